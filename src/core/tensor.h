// Tensor: a non-owning view of dense row-major memory with a dtype and a shape. Memory is owned by
// a backend allocator (or by the caller); a Tensor never frees. Invariant: data points to at least
// nbytes() bytes whenever numel() > 0.
#pragma once

#include <cstdint>

#include "core/check.h"
#include "core/dtype.h"
#include "core/shape.h"

namespace zt {

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::kF32;
  Shape shape;

  Tensor() = default;
  Tensor(void* d, DType t, Shape s) : data(d), dtype(t), shape(std::move(s)) {}

  int64_t numel() const { return shape.numel(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype); }

  template <typename T>
  T* as() const {
    ZT_CHECK(DTypeOf<T>::value == dtype)
        << "tensor is " << DTypeName(dtype) << ", accessed as " << DTypeName(DTypeOf<T>::value);
    return static_cast<T*>(data);
  }
  // The same memory seen with another shape of equal element count.
  Tensor Reshaped(Shape s) const {
    ZT_CHECK_EQ(s.numel(), numel()) << "reshape " << shape << " -> " << s;
    return Tensor(data, dtype, std::move(s));
  }
  // Rows [begin, end) along the first dimension.
  Tensor Rows(int64_t begin, int64_t end) const;
};

}  // namespace zt
