// Shape: the dimensions of a dense row-major tensor. Invariant: every dimension is >= 0; a rank-0
// shape is a scalar with one element.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace zt {

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(std::vector<int64_t> dims);

  int rank() const { return static_cast<int>(dims_.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  int64_t operator[](int i) const { return dim(i); }
  const std::vector<int64_t>& dims() const { return dims_; }
  int64_t numel() const;
  // Product of dims [begin, end).
  int64_t Product(int begin, int end) const;
  // Dims [begin, end) as a new shape (negative indices count from the end).
  Shape Slice(int begin, int end) const;
  // True when `suffix` equals the last suffix.rank() dims of this shape.
  bool EndsWith(const Shape& suffix) const;
  // "[2,3,4]"; a scalar prints as "[]".
  std::string ToString() const;

  bool operator==(const Shape& o) const { return dims_ == o.dims_; }
  bool operator!=(const Shape& o) const { return dims_ != o.dims_; }

 private:
  std::vector<int64_t> dims_;
};

std::ostream& operator<<(std::ostream& os, const Shape& s);

}  // namespace zt
