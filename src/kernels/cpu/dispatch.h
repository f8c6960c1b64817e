// Helpers for CPU kernels: dispatch on a floating storage type (f32, bf16, f16) so one template
// body computes in f32 over any of them, and row-wise float loads/stores.
#pragma once

#include <utility>

#include "core/check.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace zt {

// Calls fn(T{}) with T = float, BFloat16 or Half according to `dtype`.
template <typename F>
decltype(auto) DispatchFloat(DType dtype, F&& fn) {
  switch (dtype) {
    case DType::kF32: return fn(float{});
    case DType::kBF16: return fn(BFloat16{});
    case DType::kF16: return fn(Half{});
    default: break;
  }
  ZT_CHECK(false) << "expected a floating dtype, got " << DTypeName(dtype);
  return fn(float{});
}

// Reads n elements of storage type T as f32 into dst.
template <typename T>
inline void LoadF32(const T* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = ToF32(src[i]);
}
template <typename T>
inline void StoreF32(const float* src, T* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = FromF32<T>(src[i]);
}

// Element i of a floating tensor, as f32 (slow path for tests and small kernels).
inline float GetF32(const Tensor& t, int64_t i) {
  return DispatchFloat(t.dtype, [&](auto tag) {
    using T = decltype(tag);
    return ToF32(static_cast<const T*>(t.data)[i]);
  });
}
inline void SetF32(const Tensor& t, int64_t i, float v) {
  DispatchFloat(t.dtype, [&](auto tag) {
    using T = decltype(tag);
    static_cast<T*>(t.data)[i] = FromF32<T>(v);
  });
}

// Reads an integer index tensor (i32 or i64) element as int64.
inline int64_t GetIndex(const Tensor& t, int64_t i) {
  if (t.dtype == DType::kI32) return static_cast<const int32_t*>(t.data)[i];
  ZT_CHECK(t.dtype == DType::kI64) << "index tensor must be i32 or i64, is " << DTypeName(t.dtype);
  return static_cast<const int64_t*>(t.data)[i];
}

}  // namespace zt
