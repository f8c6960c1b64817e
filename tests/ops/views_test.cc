// Views family (transpose, split, concat): forward values against naive index arithmetic written
// here (several ranks and perms, size-1 dims, every dtype, exact since the ops only move
// elements), split/concat round trips, negative axes, backward by finite differences (including
// split outputs that get no gradient), rejected attributes and costs.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "ir/autodiff.h"
#include "ir/ops/elementwise.h"
#include "ir/ops/views.h"
#include "kernels/cpu/views.h"
#include "support/gradcheck.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::GradCheck;
using testing::GradInput;
using testing::GraphRunner;
using testing::RandomInts;
using testing::RandomUniform;

std::vector<int64_t> RowMajorStrides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

// Naive transpose: for every output index (i_0..i_r), the input index k has k[perm[j]] = i_j.
template <typename T>
std::vector<T> NaiveTranspose(const std::vector<T>& x, const std::vector<int64_t>& dims, const std::vector<int64_t>& perm) {
  size_t r = dims.size();
  std::vector<int64_t> out_dims(r);
  for (size_t j = 0; j < r; ++j) out_dims[j] = dims[perm[j]];
  std::vector<int64_t> in_strides = RowMajorStrides(dims);
  int64_t n = std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<>());
  std::vector<T> out(static_cast<size_t>(n));
  for (int64_t o = 0; o < n; ++o) {
    int64_t rem = o, src = 0;
    for (int j = static_cast<int>(r) - 1; j >= 0; --j) {
      int64_t i = rem % out_dims[j];
      rem /= out_dims[j];
      src += i * in_strides[perm[j]];
    }
    out[o] = x[src];
  }
  return out;
}

// Naive slab of x along axis: rows [begin, begin + len).
std::vector<float> NaiveSlab(const std::vector<float>& x, const std::vector<int64_t>& dims, int axis, int64_t begin,
                             int64_t len) {
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= dims[d];
  for (size_t d = axis + 1; d < dims.size(); ++d) inner *= dims[d];
  std::vector<float> out;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t a = begin; a < begin + len; ++a)
      for (int64_t i = 0; i < inner; ++i) out.push_back(x[(o * dims[axis] + a) * inner + i]);
  return out;
}

struct TCase {
  std::vector<int64_t> dims, perm;
};

const std::vector<TCase> kTransposeCases = {
    {{}, {}},                                  // rank 0
    {{7}, {0}},                                // rank 1
    {{1}, {0}},                                //
    {{3, 4}, {1, 0}},                          //
    {{1, 5}, {1, 0}},                          // size-1 dims
    {{4, 1}, {1, 0}},                          //
    {{3, 4}, {0, 1}},                          // identity
    {{2, 3, 4}, {2, 0, 1}},                    //
    {{2, 3, 4}, {1, 2, 0}},                    //
    {{2, 3, 4}, {0, 2, 1}},                    //
    {{2, 3, 4}, {2, 1, 0}},                    //
    {{2, 3, 4}, {1, 0, 2}},                    //
    {{2, 5, 3, 7}, {0, 2, 1, 3}},              // [B,T,H,D] -> [B,H,T,D]
    {{2, 5, 3, 7}, {0, 2, 3, 1}},              // [B,T,H,D] -> [B,H,D,T]
    {{2, 5, 3, 7}, {3, 1, 0, 2}},              //
    {{1, 3, 1, 4}, {3, 2, 1, 0}},              //
    {{3, 1, 1, 4}, {0, 2, 1, 3}},              // only size-1 dims move
    {{67, 45}, {1, 0}},                        // not multiples of the tile
    {{3, 37, 41}, {0, 2, 1}},                  //
    {{33, 2, 65}, {2, 1, 0}},                  //
    {{2, 3, 1, 4, 5}, {4, 2, 0, 3, 1}},        // rank 5
    {{2, 1, 3, 2, 2, 3}, {5, 0, 4, 1, 3, 2}},  // rank 6
};

class TransposeCase : public ::testing::TestWithParam<TCase> {};

void CheckTransposeForward(const TCase& c, DType dtype) {
  auto g = std::make_unique<ir::Graph>("tr");
  ir::Builder b(g.get());
  auto* x = b.Input("x", dtype, Shape(c.dims));
  // Emit directly so the identity cases run the kernel too (the helper would return x).
  g->outputs() = {b.Emit1("transpose", {x}, {{"perm", c.perm}}, "out")};
  GraphRunner r(std::move(g));
  int64_t n = Shape(c.dims).numel();
  std::vector<float> xv;
  if (IsFloating(dtype)) {
    xv = testing::RoundTo(dtype, RandomUniform(n, 5, -4.0f, 4.0f));
  } else {
    auto ints = RandomInts(n, 5, 0, dtype == DType::kU8 ? 256 : 1 << 20);
    xv.assign(ints.begin(), ints.end());
  }
  r.Set("x", xv);
  r.Run();
  std::vector<float> ref = NaiveTranspose(xv, c.dims, c.perm);
  std::vector<float> out = r.Get("out");
  ASSERT_EQ(out.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(out[i], ref[i]) << DTypeName(dtype) << " element " << i;
  std::vector<int64_t> od;
  for (int64_t p : c.perm) od.push_back(c.dims[p]);
  EXPECT_EQ(r.value("out")->shape, Shape(od));
}

// The ops copy elements, so every storage type matches the reference exactly (tolerance 0).
TEST_P(TransposeCase, ForwardF32) { CheckTransposeForward(GetParam(), DType::kF32); }
TEST_P(TransposeCase, ForwardBf16) { CheckTransposeForward(GetParam(), DType::kBF16); }
TEST_P(TransposeCase, ForwardF16) { CheckTransposeForward(GetParam(), DType::kF16); }
TEST_P(TransposeCase, ForwardI32) { CheckTransposeForward(GetParam(), DType::kI32); }
TEST_P(TransposeCase, ForwardU8) { CheckTransposeForward(GetParam(), DType::kU8); }

// i64 through the launcher directly, with values whose high bytes matter.
TEST_P(TransposeCase, KernelI64AllBytes) {
  const TCase& c = GetParam();
  Shape s(c.dims);
  std::vector<int64_t> x(static_cast<size_t>(s.numel()));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<int64_t>(0x0102030405060708ull * (i + 1)) ^ (int64_t{1} << 62);
  std::vector<int64_t> out(x.size(), 0);
  std::vector<int64_t> od;
  for (int64_t p : c.perm) od.push_back(c.dims[p]);
  transpose_fwd(Tensor(x.data(), DType::kI64, s), c.perm, Tensor(out.data(), DType::kI64, Shape(od)));
  EXPECT_EQ(out, NaiveTranspose(x, c.dims, c.perm));
}

TEST_P(TransposeCase, Backward) {
  const TCase& c = GetParam();
  std::vector<int64_t> perm = c.perm;
  GradCheck({{"x", Shape(c.dims)}}, [perm](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return std::vector<ir::Value*>{b.Emit1("transpose", {v[0]}, {{"perm", perm}})};
  });
}

INSTANTIATE_TEST_SUITE_P(All, TransposeCase, ::testing::ValuesIn(kTransposeCases),
                         [](const ::testing::TestParamInfo<TCase>& i) { return "case" + std::to_string(i.index); });

TEST(Transpose, HelperSkipsIdentityAndGradUsesInverse) {
  ir::Graph g("t");
  ir::Builder b(&g);
  auto* x = b.Param("x", DType::kF32, Shape{2, 3, 4});
  EXPECT_EQ(ir::ops::Transpose(b, x, {0, 1, 2}), x);
  auto* y = ir::ops::Transpose(b, x, {2, 0, 1}, "y");
  EXPECT_EQ(y->shape, Shape({4, 2, 3}));
  EXPECT_EQ(ir::ops::InversePermutation({2, 0, 1}), (std::vector<int64_t>{1, 2, 0}));
  auto* loss = ir::ops::ReduceSumTo(b, y, Shape{});
  ASSERT_TRUE(ir::AppendBackward(g, loss, {x}).ok());
  const ir::Node* dx = g.GradOf(x)->producer;
  ASSERT_NE(dx, nullptr);
  EXPECT_EQ(dx->op->name, "transpose");
  EXPECT_EQ(dx->attrs.GetInts("perm"), (std::vector<int64_t>{1, 2, 0}));
}

// ---- split / concat -------------------------------------------------------------------------

struct SCase {
  std::vector<int64_t> dims;
  int64_t axis;  // as given (may be negative)
  std::vector<int64_t> sizes;
};

const std::vector<SCase> kSplitCases = {
    {{7}, 0, {3, 4}},                 // rank 1
    {{7}, -1, {1, 1, 5}},             //
    {{4, 6}, 0, {1, 3}},              //
    {{4, 6}, 1, {2, 2, 2}},           //
    {{4, 6}, -1, {5, 1}},             // negative axis
    {{2, 9, 5}, 1, {4, 5}},           //
    {{2, 9, 5}, -2, {3, 3, 3}},       //
    {{2, 9, 5}, -3, {1, 1}},          //
    {{1, 1, 3}, 2, {1, 2}},           // size-1 dims
    {{2, 3, 1, 4}, 2, {1}},           // one piece of a size-1 axis
    {{3, 5, 2, 7}, 3, {2, 0, 5}},     // an empty piece
    {{2, 4, 3, 96}, -1, {32, 32, 32}},  // q/k/v style
};

class SplitCase : public ::testing::TestWithParam<SCase> {};

int NormAxis(const SCase& c) { return static_cast<int>(c.axis < 0 ? c.axis + static_cast<int64_t>(c.dims.size()) : c.axis); }

void CheckSplitConcat(const SCase& c, DType dtype) {
  auto g = std::make_unique<ir::Graph>("sc");
  ir::Builder b(g.get());
  auto* x = b.Input("x", dtype, Shape(c.dims));
  std::vector<ir::Value*> pieces = b.Emit("split", {x}, {{"axis", c.axis}, {"sizes", c.sizes}}, "piece");
  ASSERT_EQ(pieces.size(), c.sizes.size());
  auto* joined = b.Emit1("concat", pieces, {{"axis", c.axis}}, "joined");
  g->outputs() = pieces;
  g->outputs().push_back(joined);
  std::vector<std::string> names;
  for (auto* p : pieces) names.push_back(p->name);
  GraphRunner r(std::move(g));
  auto xv = testing::RoundTo(dtype, RandomUniform(Shape(c.dims).numel(), 21, -3.0f, 3.0f));
  r.Set("x", xv);
  r.Run();
  int axis = NormAxis(c);
  int64_t off = 0;
  for (size_t i = 0; i < c.sizes.size(); ++i) {
    std::vector<int64_t> pd = c.dims;
    pd[axis] = c.sizes[i];
    EXPECT_EQ(r.value(names[i])->shape, Shape(pd));
    EXPECT_EQ(r.Get(names[i]), NaiveSlab(xv, c.dims, axis, off, c.sizes[i])) << "piece " << i;
    off += c.sizes[i];
  }
  EXPECT_EQ(r.Get("joined"), xv);  // round trip, exact
}

TEST_P(SplitCase, ForwardAndRoundTripF32) { CheckSplitConcat(GetParam(), DType::kF32); }
TEST_P(SplitCase, ForwardAndRoundTripBf16) { CheckSplitConcat(GetParam(), DType::kBF16); }
TEST_P(SplitCase, ForwardAndRoundTripF16) { CheckSplitConcat(GetParam(), DType::kF16); }

// concat of independent inputs against the naive layout (the pieces are not views of one x).
TEST_P(SplitCase, ConcatForwardIndependentInputs) {
  const SCase& c = GetParam();
  int axis = NormAxis(c);
  auto g = std::make_unique<ir::Graph>("cat");
  ir::Builder b(g.get());
  std::vector<ir::Value*> xs;
  for (size_t i = 0; i < c.sizes.size(); ++i) {
    std::vector<int64_t> pd = c.dims;
    pd[axis] = c.sizes[i];
    xs.push_back(b.Input("x" + std::to_string(i), DType::kF32, Shape(pd)));
  }
  g->outputs() = {b.Emit1("concat", xs, {{"axis", c.axis}}, "out")};
  GraphRunner r(std::move(g));
  std::vector<std::vector<float>> vals;
  for (size_t i = 0; i < xs.size(); ++i) {
    vals.push_back(RandomUniform(r.value("x" + std::to_string(i))->shape.numel(), 40 + i));
    r.Set("x" + std::to_string(i), vals.back());
  }
  r.Run();
  // out[o, a, i] with a in piece p at a - off_p: computed per element by index arithmetic.
  int64_t outer = Shape(c.dims).Product(0, axis), inner = Shape(c.dims).Product(axis + 1, static_cast<int>(c.dims.size()));
  std::vector<float> ref;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t a = 0; a < c.dims[axis]; ++a) {
      size_t p = 0;
      int64_t off = 0;
      while (a >= off + c.sizes[p]) off += c.sizes[p++];
      for (int64_t i = 0; i < inner; ++i) ref.push_back(vals[p][(o * c.sizes[p] + (a - off)) * inner + i]);
    }
  EXPECT_EQ(r.Get("out"), ref);
}

TEST_P(SplitCase, BackwardSplitAllOutputs) {
  SCase c = GetParam();
  GradCheck({{"x", Shape(c.dims)}}, [c](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return b.Emit("split", {v[0]}, {{"axis", c.axis}, {"sizes", c.sizes}});
  });
}

TEST_P(SplitCase, BackwardSplitFirstOutputOnly) {  // the others get no gradient: zero fill
  SCase c = GetParam();
  GradCheck({{"x", Shape(c.dims)}}, [c](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return std::vector<ir::Value*>{b.Emit("split", {v[0]}, {{"axis", c.axis}, {"sizes", c.sizes}})[0]};
  });
}

TEST_P(SplitCase, BackwardConcat) {
  SCase c = GetParam();
  int axis = NormAxis(c);
  std::vector<GradInput> in;
  for (size_t i = 0; i < c.sizes.size(); ++i) {
    std::vector<int64_t> pd = c.dims;
    pd[axis] = c.sizes[i];
    in.push_back({"x" + std::to_string(i), Shape(pd)});
  }
  GradCheck(in, [c](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return std::vector<ir::Value*>{b.Emit1("concat", v, {{"axis", c.axis}})};
  });
}

INSTANTIATE_TEST_SUITE_P(All, SplitCase, ::testing::ValuesIn(kSplitCases),
                         [](const ::testing::TestParamInfo<SCase>& i) { return "case" + std::to_string(i.index); });

TEST(Split, OutputNamesAndHelpers) {
  ir::Graph g("names");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kF32, Shape{2, 6});
  auto parts = ir::ops::Split(b, x, -1, {1, 2, 3}, "qkv");
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0]->name, "qkv");
  EXPECT_EQ(parts[1]->name, "qkv.1");
  EXPECT_EQ(parts[2]->name, "qkv.2");
  EXPECT_EQ(parts[2]->shape, Shape({2, 3}));
  // Identities add no node.
  EXPECT_EQ(ir::ops::Split(b, x, 1, {6}), std::vector<ir::Value*>{x});
  EXPECT_EQ(ir::ops::Concat(b, {x}, 0), x);
  auto* cat = ir::ops::Concat(b, parts, 1, "cat");
  EXPECT_EQ(cat->shape, Shape({2, 6}));
}

TEST(Concat, OneInputNotNeedingGradient) {
  // Only x1 is a param: concat's backward must still give it the right piece.
  GradCheck({{"x0", Shape{3, 2}, DType::kF32, false}, {"x1", Shape{3, 5}}},
            [](ir::Builder& b, const std::vector<ir::Value*>& v) {
              return std::vector<ir::Value*>{ir::ops::Concat(b, v, -1)};
            });
}

TEST(Views, IntegerSplitConcatCopyExactly) {
  auto g = std::make_unique<ir::Graph>("ints");
  ir::Builder b(g.get());
  auto* x = b.Input("x", DType::kI32, Shape{3, 5});
  auto parts = ir::ops::Split(b, x, 1, {2, 3}, "p");
  g->outputs() = {ir::ops::Concat(b, {parts[1], parts[0]}, 1, "swapped")};
  GraphRunner r(std::move(g));
  std::vector<int64_t> xv(15);
  std::iota(xv.begin(), xv.end(), 1000000);
  r.SetInts("x", xv);
  r.Run();
  std::vector<float> out = r.Get("swapped");
  for (int row = 0; row < 3; ++row)
    for (int j = 0; j < 5; ++j) EXPECT_EQ(out[row * 5 + j], static_cast<float>(xv[row * 5 + (j + 2) % 5]));
}

// ---- rejected inputs and costs ---------------------------------------------------------------

std::string ErrorOf(ir::Builder& b, std::string_view op, std::vector<ir::Value*> in, ir::AttrMap attrs) {
  auto r = b.TryEmit(op, std::move(in), std::move(attrs));
  return r.ok() ? std::string("<accepted>") : r.status().message();
}

bool Has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(Views, RejectsBadAttributesAndInputs) {
  ir::Graph g("bad");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kF32, Shape{2, 3, 4});
  using V = std::vector<int64_t>;
  for (const V& perm : {V{0, 1}, V{0, 1, 1}, V{0, 1, 3}, V{-1, 0, 1}, V{0, 1, 2, 3}}) {
    std::string e = ErrorOf(b, "transpose", {x}, {{"perm", perm}});
    EXPECT_TRUE(Has(e, "'perm'") && Has(e, "permutation") && Has(e, "input 0 (x)")) << e;
  }
  std::string e = ErrorOf(b, "split", {x}, {{"axis", int64_t{1}}, {"sizes", V{1, 1}}});
  EXPECT_TRUE(Has(e, "'sizes'") && Has(e, "sums to 2") && Has(e, "has 3")) << e;
  e = ErrorOf(b, "split", {x}, {{"axis", int64_t{1}}, {"sizes", V{4, -1}}});
  EXPECT_TRUE(Has(e, "'sizes'") && Has(e, "negative")) << e;
  e = ErrorOf(b, "split", {x}, {{"axis", int64_t{1}}, {"sizes", V{}}});
  EXPECT_TRUE(Has(e, "'sizes'")) << e;
  for (int64_t axis : {3, -4, 100}) {
    e = ErrorOf(b, "split", {x}, {{"axis", axis}, {"sizes", V{2}}});
    EXPECT_TRUE(Has(e, "'axis'") && Has(e, "input 0 (x)") && Has(e, "[-3, 3)")) << e;
    e = ErrorOf(b, "concat", {x, x}, {{"axis", axis}});
    EXPECT_TRUE(Has(e, "'axis'")) << e;
  }
  e = ErrorOf(b, "split", {x}, {{"sizes", V{2}}});
  EXPECT_TRUE(Has(e, "'axis'")) << e;  // required
  auto* scalar = b.Input("s", DType::kF32, Shape{});
  e = ErrorOf(b, "split", {scalar}, {{"axis", int64_t{0}}, {"sizes", V{1}}});
  EXPECT_TRUE(Has(e, "input 0 (x)") && Has(e, "rank >= 1")) << e;

  auto* y = b.Input("y", DType::kF32, Shape{2, 5, 4});
  auto* z = b.Input("z", DType::kF32, Shape{2, 3, 5});
  auto* w = b.Input("w", DType::kBF16, Shape{2, 3, 4});
  auto* v = b.Input("v", DType::kF32, Shape{2, 3});
  EXPECT_EQ(ErrorOf(b, "concat", {x, y}, {{"axis", int64_t{1}}}), "<accepted>");
  e = ErrorOf(b, "concat", {x, y, z}, {{"axis", int64_t{1}}});
  EXPECT_TRUE(Has(e, "input 2 (x2)") && Has(e, "except along axis 1")) << e;
  e = ErrorOf(b, "concat", {x, y}, {{"axis", int64_t{-1}}});
  EXPECT_TRUE(Has(e, "input 1 (x1)")) << e;
  e = ErrorOf(b, "concat", {x, w}, {{"axis", int64_t{0}}});
  EXPECT_TRUE(Has(e, "input 1 (x1)") && Has(e, "dtype")) << e;
  e = ErrorOf(b, "concat", {x, v}, {{"axis", int64_t{0}}});
  EXPECT_TRUE(Has(e, "input 1 (x1)")) << e;
  e = ErrorOf(b, "concat", {}, {{"axis", int64_t{0}}});
  EXPECT_TRUE(Has(e, "inputs")) << e;
}

TEST(Views, Costs) {
  ir::Graph g("cost");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kBF16, Shape{2, 3, 4});
  ir::Cost t = ir::NodeCost(*ir::ops::Transpose(b, x, {2, 1, 0})->producer);
  EXPECT_DOUBLE_EQ(t.flops, 0);
  EXPECT_DOUBLE_EQ(t.bytes_read, 48);
  EXPECT_DOUBLE_EQ(t.bytes_written, 48);
  auto parts = ir::ops::Split(b, x, 2, {1, 3});
  ir::Cost s = ir::NodeCost(*parts[0]->producer);
  EXPECT_DOUBLE_EQ(s.flops, 0);
  EXPECT_DOUBLE_EQ(s.bytes_read, 48);
  EXPECT_DOUBLE_EQ(s.bytes_written, 48);
  auto* y = b.Input("y", DType::kBF16, Shape{2, 3, 6});
  ir::Cost c = ir::NodeCost(*ir::ops::Concat(b, {x, y}, -1)->producer);
  EXPECT_DOUBLE_EQ(c.flops, 0);
  EXPECT_DOUBLE_EQ(c.bytes_read, 48 + 72);
  EXPECT_DOUBLE_EQ(c.bytes_written, 120);
}

}  // namespace
}  // namespace zt
