// Shape: element counts, indexing, slicing, suffix tests and printing; negative dimensions and
// out-of-range indices are bugs (CHECK deaths).
#include <gtest/gtest.h>

#include <sstream>

#include "core/shape.h"

namespace zt {
namespace {

TEST(Shape, NumelAndProduct) {
  EXPECT_EQ(Shape{}.numel(), 1);  // a scalar has one element
  EXPECT_EQ(Shape{}.rank(), 0);
  EXPECT_EQ((Shape{2, 3, 4}).numel(), 24);
  EXPECT_EQ((Shape{7}).numel(), 7);
  EXPECT_EQ((Shape{2, 0, 4}).numel(), 0);
  EXPECT_EQ((Shape{1, 1, 1}).numel(), 1);
  EXPECT_EQ(Shape(std::vector<int64_t>{5, 6}).numel(), 30);
  Shape s{2, 3, 4, 5};
  EXPECT_EQ(s.Product(1, 3), 12);
  EXPECT_EQ(s.Product(2, 2), 1);
  EXPECT_EQ(s.Product(0, 4), 120);
}

TEST(Shape, DimIndexing) {
  Shape s{2, 3, 4};
  EXPECT_EQ(s.dim(0), 2);
  EXPECT_EQ(s[2], 4);
  EXPECT_EQ(s[-1], 4);
  EXPECT_EQ(s[-3], 2);
  EXPECT_EQ(s.dims(), (std::vector<int64_t>{2, 3, 4}));
}

TEST(Shape, Slice) {
  Shape s{2, 3, 4, 5};
  EXPECT_EQ(s.Slice(1, 3), (Shape{3, 4}));
  EXPECT_EQ(s.Slice(0, -2), (Shape{2, 3}));
  EXPECT_EQ(s.Slice(-2, 4), (Shape{4, 5}));
  EXPECT_EQ(s.Slice(-1, -1), Shape{});
  EXPECT_EQ(s.Slice(0, 4), s);
  EXPECT_EQ(s.Slice(4, 4), Shape{});
  EXPECT_EQ((Shape{6}).Slice(0, -1), Shape{});
}

TEST(Shape, EndsWith) {
  Shape s{2, 3, 4};
  EXPECT_TRUE(s.EndsWith(Shape{4}));
  EXPECT_TRUE(s.EndsWith(Shape{3, 4}));
  EXPECT_TRUE(s.EndsWith(s));
  EXPECT_TRUE(s.EndsWith(Shape{}));
  EXPECT_FALSE(s.EndsWith(Shape{3}));
  EXPECT_FALSE(s.EndsWith(Shape{2, 4}));
  EXPECT_FALSE(s.EndsWith(Shape{1, 2, 3, 4}));
  EXPECT_FALSE(Shape{}.EndsWith(Shape{1}));
  EXPECT_TRUE(Shape{}.EndsWith(Shape{}));
}

TEST(Shape, ToStringAndStream) {
  EXPECT_EQ((Shape{2, 3, 4}).ToString(), "[2,3,4]");
  EXPECT_EQ(Shape{}.ToString(), "[]");
  EXPECT_EQ((Shape{0}).ToString(), "[0]");
  EXPECT_EQ((Shape{123456789012LL}).ToString(), "[123456789012]");
  std::ostringstream os;
  os << Shape{5, 1};
  EXPECT_EQ(os.str(), "[5,1]");
  EXPECT_TRUE((Shape{1, 2}) == (Shape{1, 2}));
  EXPECT_TRUE((Shape{1, 2}) != (Shape{2, 1}));
  EXPECT_TRUE((Shape{1}) != Shape{});
}

TEST(ShapeDeathTest, BadShapesAndIndicesDie) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH((Shape{2, -1}), "CHECK failed: .*negative dimension");
  EXPECT_DEATH(Shape(std::vector<int64_t>{-3}), "negative dimension");
  Shape s{2, 3};
  EXPECT_DEATH((void)s.dim(2), "dim index 2 out of range for \\[2,3\\]");
  EXPECT_DEATH((void)s.dim(-3), "out of range");
  EXPECT_DEATH((void)s.Slice(1, 3), "bad slice of \\[2,3\\]");
  EXPECT_DEATH((void)s.Slice(2, 1), "bad slice");
  EXPECT_DEATH((void)Shape{}.dim(0), "out of range for \\[\\]");
}

}  // namespace
}  // namespace zt
