// Tensor view helpers.
#include "core/tensor.h"

namespace zt {

Tensor Tensor::Rows(int64_t begin, int64_t end) const {
  ZT_CHECK_GE(shape.rank(), 1);
  ZT_CHECK(0 <= begin && begin <= end && end <= shape[0]) << "rows " << begin << ".." << end;
  std::vector<int64_t> dims = shape.dims();
  int64_t row_bytes = shape.Product(1, shape.rank()) * static_cast<int64_t>(DTypeSize(dtype));
  dims[0] = end - begin;
  return Tensor(static_cast<char*>(data) + begin * row_bytes, dtype, Shape(std::move(dims)));
}

}  // namespace zt
