// Residual-add helpers shared by the fused CPU norm kernels (layernorm.cc, rmsnorm.cc): the sum of
// the forward's residual add and the dresidual add of the backward, each computed exactly as the
// `add` kernel (elementwise.cc) computes and rounds it: widen both to f32, add, round once to the
// storage type. Invariant: a fused kernel built on these is bit-identical to the two-node
// composition it replaces.
#pragma once

#include <cstdint>

#include "core/check.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace zt {

// sum[j] = add(a[j], b[j]) over one row of c elements; returns sum (the row to normalize).
template <typename T>
inline const T* AddRow(const T* a, const T* b, T* sum, int64_t c) {
  for (int64_t j = 0; j < c; ++j) sum[j] = FromF32<T>(ToF32(a[j]) + ToF32(b[j]));
  return sum;
}

// add(dx, residual[i]) for a dx already rounded to T; dx itself without a residual.
template <typename T>
inline T WithResidual(T dx, const T* residual, int64_t i) {
  return residual ? FromF32<T>(ToF32(dx) + ToF32(residual[i])) : dx;
}

// A residual input and the output it is added into have x's type.
inline void CheckResidual(const Tensor& x, const Tensor& residual, const Tensor& out) {
  ZT_CHECK(residual.dtype == x.dtype && residual.shape == x.shape && out.dtype == x.dtype && out.shape == x.shape)
      << "residual " << DTypeName(residual.dtype) << residual.shape << " and output " << DTypeName(out.dtype)
      << out.shape << " must have x's type " << DTypeName(x.dtype) << x.shape;
}

}  // namespace zt
