// Shape arithmetic and printing.
#include "core/shape.h"

#include <ostream>

#include "core/check.h"

namespace zt {

Shape::Shape(std::initializer_list<int64_t> dims) : dims_(dims) {
  for (int64_t d : dims_) ZT_CHECK_GE(d, 0) << "negative dimension";
}

Shape::Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {
  for (int64_t d : dims_) ZT_CHECK_GE(d, 0) << "negative dimension";
}

int64_t Shape::dim(int i) const {
  int r = rank();
  if (i < 0) i += r;
  ZT_CHECK(i >= 0 && i < r) << "dim index " << i << " out of range for " << ToString();
  return dims_[i];
}

int64_t Shape::numel() const { return Product(0, rank()); }

int64_t Shape::Product(int begin, int end) const {
  int64_t n = 1;
  for (int i = begin; i < end; ++i) n *= dims_[i];
  return n;
}

Shape Shape::Slice(int begin, int end) const {
  int r = rank();
  if (begin < 0) begin += r;
  if (end < 0) end += r;
  ZT_CHECK(0 <= begin && begin <= end && end <= r) << "bad slice of " << ToString();
  return Shape(std::vector<int64_t>(dims_.begin() + begin, dims_.begin() + end));
}

bool Shape::EndsWith(const Shape& suffix) const {
  if (suffix.rank() > rank()) return false;
  int off = rank() - suffix.rank();
  for (int i = 0; i < suffix.rank(); ++i)
    if (dims_[off + i] != suffix.dims_[i]) return false;
  return true;
}

std::string Shape::ToString() const {
  std::string s = "[";
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(dims_[i]);
  }
  return s + "]";
}

std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.ToString(); }

}  // namespace zt
