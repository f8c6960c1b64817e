// Matmul epilogue family (matmul_gelu, matmul_dgelu, matmul_bgrad) on the CPU: each fused op is
// BIT-identical to the unfused nodes it stands for (matmul then gelu, matmul then gelu_bwd, matmul
// and reduce_sum_to), computed side by side in one graph on the same inputs, for f32, bf16 and
// f16, every transpose, batched and shared operands, with and without bias; the shape rules accept
// what the kernels run and reject the rest with messages naming the problem; costs and workspaces
// follow the matmul's rules.
#include <gtest/gtest.h>

#include <cstring>

#include "ir/ops/activation.h"
#include "ir/ops/elementwise.h"
#include "ir/ops/matmul.h"
#include "ir/ops/views.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::GraphRunner;
using testing::RandomUniform;

struct Case {
  std::vector<int64_t> a, b;
  bool ta, tb, bias;
};

const std::vector<Case> kCases = {
    {{3, 4}, {4, 5}, false, false, false},      {{3, 4}, {5, 4}, false, true, true},
    {{4, 3}, {4, 5}, true, false, true},        {{4, 3}, {5, 4}, true, true, false},
    {{2, 3, 4}, {4, 8}, false, false, true},    {{2, 3, 4}, {2, 4, 5}, false, false, false},
    {{3, 4}, {2, 4, 5}, false, false, true},    {{2, 4, 3}, {2, 5, 4}, true, true, true},
    {{2, 9, 16}, {16, 24}, false, false, true},  // GPT-2's MLP layout, in small
};

std::string Name(const Case& c, DType dt) {
  return std::string(DTypeName(dt)) + " a" + Shape(c.a).ToString() + (c.ta ? "^T" : "") + " b" +
         Shape(c.b).ToString() + (c.tb ? "^T" : "") + (c.bias ? " +bias" : "");
}

int64_t OutCols(const Case& c) { return c.tb ? Shape(c.b)[-2] : Shape(c.b)[-1]; }

// Bit patterns of f32 values (GraphRunner widens bf16/f16 exactly, so equal bits here means equal
// bits in storage; -0 and +0 differ, NaNs compare by payload).
void ExpectSameBits(const std::vector<float>& want, const std::vector<float>& got, const std::string& what) {
  ASSERT_EQ(want.size(), got.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::memcmp(&want[i], &got[i], sizeof(float)) != 0 && bad++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: unfused " << want[i] << ", fused " << got[i];
  }
  EXPECT_EQ(bad, 0) << bad << " of " << want.size() << " elements of " << what << " differ";
  // The comparison is between real results, not between two untouched buffers.
  bool nonzero = false;
  for (float v : want) nonzero |= v != 0.0f;
  EXPECT_TRUE(nonzero || want.empty()) << what << " is all zeros";
}

void SetRandom(GraphRunner& r, const std::string& name, uint64_t seed, float lo = -2.0f, float hi = 2.0f) {
  r.Set(name, RandomUniform(r.value(name)->shape.numel(), seed, lo, hi));
}

class MatmulEpilogueCase : public ::testing::TestWithParam<Case> {};

TEST_P(MatmulEpilogueCase, MatmulGeluIsMatmulThenGelu) {
  const Case c = GetParam();
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(Name(c, dt));
    auto g = std::make_unique<ir::Graph>("mg");
    ir::Builder b(g.get());
    auto* a = b.Input("a", dt, Shape(c.a));
    auto* w = b.Input("b", dt, Shape(c.b));
    auto* bias = c.bias ? b.Input("bias", dt, Shape{OutCols(c)}) : nullptr;
    auto* pre = ir::ops::Matmul(b, a, w, c.ta, c.tb, bias, "pre");
    auto* out = ir::ops::Gelu(b, pre, "out");
    std::vector<ir::Value*> in = {a, w};
    if (bias) in.push_back(bias);
    auto fused = b.Emit("matmul_gelu", in, {{"trans_a", c.ta}, {"trans_b", c.tb}}, "fused");
    ASSERT_EQ(fused.size(), 2u);
    g->outputs() = {out, pre, fused[0], fused[1]};
    GraphRunner r(std::move(g));
    SetRandom(r, "a", 1);
    SetRandom(r, "b", 2);
    if (c.bias) SetRandom(r, "bias", 3);
    r.Run();
    ExpectSameBits(r.Get("out"), r.Get("fused"), "out");
    ExpectSameBits(r.Get("pre"), r.Get("fused.pre"), "pre");
  }
}

TEST_P(MatmulEpilogueCase, MatmulDGeluIsMatmulThenGeluBwd) {
  const Case c = GetParam();
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(Name(c, dt));
    auto g = std::make_unique<ir::Graph>("mdg");
    ir::Builder b(g.get());
    auto* a = b.Input("a", dt, Shape(c.a));
    auto* w = b.Input("b", dt, Shape(c.b));
    auto* dh = ir::ops::Matmul(b, a, w, c.ta, c.tb, nullptr, "dh");
    auto* pre = b.Input("pre", dt, dh->shape);
    auto* du = b.Emit1("gelu_bwd", {dh, pre}, {}, "du");
    auto* fused = b.Emit1("matmul_dgelu", {a, w, pre}, {{"trans_a", c.ta}, {"trans_b", c.tb}}, "fused");
    g->outputs() = {du, fused};
    GraphRunner r(std::move(g));
    SetRandom(r, "a", 4);
    SetRandom(r, "b", 5);
    SetRandom(r, "pre", 6, -4.0f, 4.0f);
    r.Run();
    ExpectSameBits(r.Get("du"), r.Get("fused"), "dpre");
  }
}

INSTANTIATE_TEST_SUITE_P(All, MatmulEpilogueCase, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) { return "case" + std::to_string(i.index); });

// The weight-gradient pair of a linear layer: dC [batch.., rows, N], x [batch.., rows, M], flattened
// to [R, N] and [R, M]; dW = x^T dC (bias_of b) or dC^T x (bias_of a); db = reduce_sum_to(dC, [N]).
struct BGradCase {
  std::vector<int64_t> lead;  // dC's and x's leading dims (their product is R)
  int64_t m, n;
  bool dc_is_a;
};

TEST(MatmulBGrad, IsMatmulAndReduceSumTo) {
  const std::vector<BGradCase> cases = {{{2, 9}, 16, 24, false}, {{2, 9}, 16, 24, true}, {{7}, 5, 3, false},
                                        {{1}, 1, 1, true},       {{3, 1, 5}, 8, 7, false}, {{40}, 12, 33, true}};
  for (const BGradCase& k : cases) {
    for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
      int64_t rows = Shape(k.lead).numel();
      SCOPED_TRACE(std::string(DTypeName(dt)) + " rows " + std::to_string(rows) + " m " + std::to_string(k.m) +
                   " n " + std::to_string(k.n) + (k.dc_is_a ? " dC^T x" : " x^T dC"));
      std::vector<int64_t> dcs = k.lead, xs = k.lead;
      dcs.push_back(k.n);
      xs.push_back(k.m);
      auto g = std::make_unique<ir::Graph>("bg");
      ir::Builder b(g.get());
      auto* dc = b.Input("dc", dt, Shape(dcs));
      auto* x = b.Input("x", dt, Shape(xs));
      auto* dc2 = ir::ops::Reshape(b, dc, Shape{rows, k.n}, "dc_flat");
      auto* x2 = ir::ops::Reshape(b, x, Shape{rows, k.m}, "x_flat");
      ir::Value* lhs = k.dc_is_a ? dc2 : x2;
      ir::Value* rhs = k.dc_is_a ? x2 : dc2;
      auto* dw = ir::ops::Matmul(b, lhs, rhs, true, false, nullptr, "dw");
      auto* db = ir::ops::ReduceSumTo(b, dc, Shape{k.n}, "db");
      auto fused = b.Emit("matmul_bgrad", {lhs, rhs},
                          {{"trans_a", true}, {"trans_b", false}, {"bias_of", std::string(k.dc_is_a ? "a" : "b")}},
                          "fused");
      ASSERT_EQ(fused.size(), 2u);
      EXPECT_EQ(fused[1]->shape, Shape{k.n});
      g->outputs() = {dw, db, fused[0], fused[1]};
      GraphRunner r(std::move(g));
      SetRandom(r, "dc", 7);
      SetRandom(r, "x", 8);
      r.Run();
      ExpectSameBits(r.Get("dw"), r.Get("fused"), "out");
      ExpectSameBits(r.Get("db"), r.Get("fused.bias_grad"), "bias_grad");
    }
  }
}

// ---- Shape rules ----

struct Built {
  ir::Graph g{"t"};
  ir::Builder b{&g};
};

std::string EmitError(Built& t, const std::string& op, std::vector<ir::Value*> in, ir::AttrMap attrs) {
  auto r = t.b.TryEmit(op, std::move(in), std::move(attrs));
  return r.ok() ? std::string("accepted") : r.status().message();
}

bool Has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(MatmulEpilogueInfer, MatmulGelu) {
  Built t;
  auto* a = t.b.Input("a", DType::kBF16, Shape{2, 3, 4});
  auto* w = t.b.Input("w", DType::kBF16, Shape{4, 5});
  auto* bias = t.b.Input("bias", DType::kBF16, Shape{5});
  auto r = t.b.TryEmit("matmul_gelu", {a, w, bias}, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  for (ir::Value* v : *r) {
    EXPECT_EQ(v->shape, (Shape{2, 3, 5}));
    EXPECT_EQ(v->dtype, DType::kBF16);
  }
  EXPECT_TRUE(t.b.TryEmit("matmul_gelu", {a, w}, {}).ok());
  auto* w_bad = t.b.Input("w_bad", DType::kBF16, Shape{6, 5});
  EXPECT_TRUE(Has(EmitError(t, "matmul_gelu", {a, w_bad}, {}), "inner dims"));
  auto* bias_bad = t.b.Input("bias_bad", DType::kBF16, Shape{4});
  EXPECT_TRUE(Has(EmitError(t, "matmul_gelu", {a, w, bias_bad}, {}), "bias"));
  auto* w32 = t.b.Input("w32", DType::kF32, Shape{4, 5});
  EXPECT_NE(EmitError(t, "matmul_gelu", {a, w32}, {}), "accepted");
  auto* ai = t.b.Input("ai", DType::kI32, Shape{3, 4});
  auto* wi = t.b.Input("wi", DType::kI32, Shape{4, 5});
  EXPECT_NE(EmitError(t, "matmul_gelu", {ai, wi}, {}), "accepted");
}

TEST(MatmulEpilogueInfer, MatmulDGelu) {
  Built t;
  auto* a = t.b.Input("a", DType::kF16, Shape{6, 5});
  auto* w = t.b.Input("w", DType::kF16, Shape{8, 5});
  auto* pre = t.b.Input("pre", DType::kF16, Shape{6, 8});
  auto r = t.b.TryEmit("matmul_dgelu", {a, w, pre}, {{"trans_b", true}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)[0]->shape, (Shape{6, 8}));
  auto* pre_t = t.b.Input("pre_t", DType::kF16, Shape{8, 6});
  EXPECT_TRUE(Has(EmitError(t, "matmul_dgelu", {a, w, pre_t}, {{"trans_b", true}}), "pre"));
  auto* pre_dt = t.b.Input("pre_dt", DType::kF32, Shape{6, 8});
  EXPECT_TRUE(Has(EmitError(t, "matmul_dgelu", {a, w, pre_dt}, {{"trans_b", true}}), "pre"));
  EXPECT_NE(EmitError(t, "matmul_dgelu", {a, w}, {{"trans_b", true}}), "accepted");  // pre is required
  EXPECT_TRUE(Has(EmitError(t, "matmul_dgelu", {a, w, pre}, {}), "inner dims"));
}

TEST(MatmulEpilogueInfer, MatmulBGradOnlyInTheWeightGradientLayout) {
  Built t;
  auto* x = t.b.Input("x", DType::kBF16, Shape{10, 4});   // [K, M]
  auto* dc = t.b.Input("dc", DType::kBF16, Shape{10, 6});  // [K, N]
  ir::AttrMap wg{{"trans_a", true}, {"trans_b", false}};
  auto r = t.b.TryEmit("matmul_bgrad", {x, dc}, wg);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)[0]->shape, (Shape{4, 6}));
  EXPECT_EQ((*r)[1]->shape, Shape{6});
  ir::AttrMap of_a = wg;
  of_a.Set("bias_of", std::string("a"));
  auto ra = t.b.TryEmit("matmul_bgrad", {dc, x}, of_a);
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  EXPECT_EQ((*ra)[0]->shape, (Shape{6, 4}));
  EXPECT_EQ((*ra)[1]->shape, Shape{6});
  // Other layouts, ranks and bias_of values are refused.
  auto* xt = t.b.Input("xt", DType::kBF16, Shape{4, 10});
  EXPECT_TRUE(Has(EmitError(t, "matmul_bgrad", {xt, dc}, {{"trans_a", false}, {"trans_b", false}}), "trans_a=true"));
  auto* dct = t.b.Input("dct", DType::kBF16, Shape{6, 10});
  EXPECT_TRUE(Has(EmitError(t, "matmul_bgrad", {x, dct}, {{"trans_a", true}, {"trans_b", true}}), "trans_a=true"));
  auto* x3 = t.b.Input("x3", DType::kBF16, Shape{2, 10, 4});
  auto* dc3 = t.b.Input("dc3", DType::kBF16, Shape{2, 10, 6});
  EXPECT_TRUE(Has(EmitError(t, "matmul_bgrad", {x3, dc3}, wg), "rank 2"));
  ir::AttrMap of_c = wg;
  of_c.Set("bias_of", std::string("c"));
  EXPECT_TRUE(Has(EmitError(t, "matmul_bgrad", {x, dc}, of_c), "bias_of"));
  auto* dc_bad = t.b.Input("dc_bad", DType::kBF16, Shape{9, 6});
  EXPECT_TRUE(Has(EmitError(t, "matmul_bgrad", {x, dc_bad}, wg), "inner dims"));
}

// ---- Costs and workspaces ----

TEST(MatmulEpilogueCost, FlopsAndBytes) {
  Built t;
  auto* a = t.b.Input("a", DType::kBF16, Shape{6, 4});
  auto* w = t.b.Input("w", DType::kBF16, Shape{4, 8});
  auto* bias = t.b.Input("bias", DType::kBF16, Shape{8});
  auto mg = t.b.Emit("matmul_gelu", {a, w, bias});
  ir::Cost c = ir::NodeCost(*mg[0]->producer);
  EXPECT_DOUBLE_EQ(c.flops, 2.0 * 6 * 8 * 4 + 6 * 8 + 9.0 * 6 * 8);  // product, bias, gelu
  EXPECT_DOUBLE_EQ(c.bytes_read, (24 + 32 + 8) * 2.0);
  EXPECT_DOUBLE_EQ(c.bytes_written, 2 * 48 * 2.0);  // out and pre
  auto* pre = t.b.Input("pre", DType::kBF16, Shape{6, 8});
  auto* dg = t.b.Emit1("matmul_dgelu", {a, w, pre});
  c = ir::NodeCost(*dg->producer);
  EXPECT_DOUBLE_EQ(c.flops, 2.0 * 6 * 8 * 4 + 17.0 * 6 * 8);
  EXPECT_DOUBLE_EQ(c.bytes_read, (24 + 32 + 48) * 2.0);
  EXPECT_DOUBLE_EQ(c.bytes_written, 48 * 2.0);
  auto bg = t.b.Emit("matmul_bgrad", {a, pre}, {{"trans_a", true}});
  c = ir::NodeCost(*bg[0]->producer);
  EXPECT_DOUBLE_EQ(c.flops, 2.0 * 4 * 8 * 6 + 6 * 8);  // product, column sums of pre
  EXPECT_DOUBLE_EQ(c.bytes_written, (32 + 8) * 2.0);
}

TEST(MatmulEpilogueWorkspace, CoversTheMatmulAndTheReduction) {
  for (ir::Target target : {ir::Target::kCpu, ir::Target::kCuda}) {
    Built t;
    auto* a = t.b.Input("a", DType::kBF16, Shape{2048, 768});
    auto* w = t.b.Input("w", DType::kBF16, Shape{768, 3072});
    auto* bias = t.b.Input("bias", DType::kBF16, Shape{3072});
    auto* ref = ir::ops::Matmul(t.b, a, w, false, false, bias);
    auto mg = t.b.Emit("matmul_gelu", {a, w, bias});
    EXPECT_EQ(ir::NodeWorkspace(*mg[0]->producer, target), ir::NodeWorkspace(*ref->producer, target));
    EXPECT_GT(ir::NodeWorkspace(*mg[0]->producer, target), 0u);
    auto* pre = t.b.Input("pre", DType::kBF16, Shape{2048, 3072});
    auto* ref2 = ir::ops::Matmul(t.b, a, w);
    auto* dg = t.b.Emit1("matmul_dgelu", {a, w, pre});
    EXPECT_EQ(ir::NodeWorkspace(*dg->producer, target), ir::NodeWorkspace(*ref2->producer, target));
    auto* ref3 = ir::ops::Matmul(t.b, a, pre, true, false);
    auto* sum = ir::ops::ReduceSumTo(t.b, pre, Shape{3072});
    auto bg = t.b.Emit("matmul_bgrad", {a, pre}, {{"trans_a", true}});
    EXPECT_EQ(ir::NodeWorkspace(*bg[0]->producer, target),
              std::max(ir::NodeWorkspace(*ref3->producer, target), ir::NodeWorkspace(*sum->producer, target)));
  }
}

}  // namespace
}  // namespace zt
