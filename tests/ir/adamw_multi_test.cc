// adamw_multi's declaration (ir/ops/adamw.cc): the shape rule accepts k tensors of mixed shapes
// with and without master weights and rejects wrong input counts, mixed parameter or gradient
// dtypes, non-f32 states and mismatched shapes with messages naming the counts or the tensor;
// adamw keeps rejecting what it rejected (one shared check). Output o is input o + 2 updated in
// place (FindAlias, ResolveAlias, the verifier's overwrite rule), the text form round-trips, and
// the cost is the sum of the k adamw nodes' costs.
#include <gtest/gtest.h>

#include "ir/builder.h"
#include "ir/ops/adamw.h"
#include "ir/ops/elementwise.h"
#include "ir/text.h"
#include "ir/verifier.h"

namespace zt::ir {
namespace {

struct TensorSpec {
  Shape shape;
  DType param = DType::kF32, grad = DType::kF32, m = DType::kF32, v = DType::kF32, w = DType::kF32;
};

// A graph with the values of k tensors and the shared scalars; Inputs() lists them in
// adamw_multi's order.
struct MultiGraph {
  Graph g{"multi"};
  Builder b{&g};
  Value* scalars;
  Value* sumsq;
  std::vector<Value*> p, m, v, w, gr;
  MultiGraph(const std::vector<TensorSpec>& ts, bool masters) {
    scalars = b.Input("s", DType::kF32, Shape{kAdamWScalars});
    sumsq = b.Input("ss", DType::kF32, Shape{});
    for (size_t i = 0; i < ts.size(); ++i) {
      std::string n = std::to_string(i);
      p.push_back(b.Param("p" + n, ts[i].param, ts[i].shape));
      m.push_back(b.State("m" + n, ts[i].m, ts[i].shape, MemCategory::kOptimizerState));
      v.push_back(b.State("v" + n, ts[i].v, ts[i].shape, MemCategory::kOptimizerState));
      if (masters) w.push_back(b.State("w" + n, ts[i].w, ts[i].shape, MemCategory::kOptimizerState));
      gr.push_back(b.Input("g" + n, ts[i].grad, ts[i].shape));
    }
    b.set_phase(Phase::kOptimizer);
  }
  std::vector<Value*> Inputs() const {
    std::vector<Value*> in = {scalars, sumsq};
    for (const auto* role : {&p, &m, &v, &w, &gr}) in.insert(in.end(), role->begin(), role->end());
    return in;
  }
  AttrMap Attrs(int64_t k) const { return {{"tensors", k}, {"weight_decay", 0.1}}; }
  StatusOr<std::vector<Value*>> Emit(int64_t k) { return b.TryEmit("adamw_multi", Inputs(), Attrs(k), "upd"); }
};

void ExpectError(const StatusOr<std::vector<Value*>>& r, const std::vector<std::string>& parts) {
  ASSERT_FALSE(r.ok()) << "accepted, expected: " << parts[0];
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  for (const std::string& s : parts)
    EXPECT_NE(r.status().message().find(s), std::string::npos) << "want '" << s << "' in: " << r.status().message();
}

TEST(AdamWMulti, InfersOneOutputPerUpdatedInput) {
  for (bool masters : {false, true}) {
    MultiGraph t({{Shape{4, 3}, DType::kBF16, DType::kF32}, {Shape{5}, DType::kBF16, DType::kF32},
                  {Shape{1}, DType::kBF16, DType::kF32}},
                 masters);
    auto r = t.Emit(3);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->size(), masters ? 12u : 9u);
    for (size_t o = 0; o < r->size(); ++o) {
      const Value* in = t.Inputs()[o + kAdamWMultiShift];
      EXPECT_EQ((*r)[o]->dtype, in->dtype) << o;
      EXPECT_EQ((*r)[o]->shape, in->shape) << o;
    }
    EXPECT_EQ((*r)[0]->dtype, DType::kBF16);
    EXPECT_EQ((*r)[3]->dtype, DType::kF32);  // m_0
    EXPECT_TRUE(Verify(t.g).ok()) << Verify(t.g).ToString();
  }
}

TEST(AdamWMulti, RejectsInputCountsNamingThem) {
  MultiGraph t({{Shape{2}}, {Shape{3}}}, false);
  ExpectError(t.Emit(3), {"tensors=3 takes 2 + 4k = 14 inputs, or 2 + 5k = 17 with master weights; got 10"});
  ExpectError(t.Emit(0), {"attribute 'tensors' must be >= 1, is 0"});
  ExpectError(t.Emit(int64_t{1} << 62), {"tensors=4611686018427387904 needs 2 + 4k or 2 + 5k inputs; got 10"});
  std::vector<Value*> in = t.Inputs();
  in.push_back(t.gr[0]);  // 11 inputs for k = 2
  ExpectError(t.b.TryEmit("adamw_multi", in, t.Attrs(2)), {"tensors=2 takes 2 + 4k = 10", "got 11"});
  ExpectError(t.b.TryEmit("adamw_multi", t.Inputs(), {}), {"needs attribute 'tensors'"});
}

TEST(AdamWMulti, RejectsMixedDTypesNamingTheTensor) {
  MultiGraph mixed_params({{Shape{2}}, {Shape{2}, DType::kBF16}}, false);
  ExpectError(mixed_params.Emit(2), {"adamw_multi: tensor 1: ", "(p_1) bf16[2] must have the dtype of", "(p_0) f32[2]"});
  MultiGraph mixed_grads({{Shape{2}}, {Shape{2}}, {Shape{3}, DType::kF32, DType::kF16}}, true);
  ExpectError(mixed_grads.Emit(3), {"adamw_multi: tensor 2: ", "(g_2) f16[3] must have the dtype of", "(g_0)"});
}

TEST(AdamWMulti, RejectsWrongStatesNamingTheTensor) {
  TensorSpec bad_m{Shape{2}};
  bad_m.m = DType::kBF16;
  MultiGraph t({{Shape{2}}, {Shape{2}}, bad_m}, false);
  ExpectError(t.Emit(3), {"adamw_multi: tensor 2: m_2 and v_2 must be f32"});
  TensorSpec bad_v{Shape{4}};
  bad_v.v = DType::kF16;
  MultiGraph u({bad_v}, false);
  ExpectError(u.Emit(1), {"adamw_multi: tensor 0: m_0 and v_0 must be f32"});
  TensorSpec bad_w{Shape{4}, DType::kBF16};
  bad_w.w = DType::kBF16;
  MultiGraph w({{Shape{4}, DType::kBF16}, bad_w}, true);
  ExpectError(w.Emit(2), {"adamw_multi: tensor 1: master weights w_1 must be f32"});
  // A state of another shape, and a gradient of another shape.
  MultiGraph s({{Shape{2}}, {Shape{3}}}, false);
  std::vector<Value*> in = s.Inputs();
  std::swap(in[AdamWMultiLayout{2, false}.exp_avg(0)], in[AdamWMultiLayout{2, false}.exp_avg(1)]);
  ExpectError(s.b.TryEmit("adamw_multi", in, s.Attrs(2)), {"adamw_multi: tensor 0: ", "(m_0) f32[3] must have the shape of",
                                                           "(p_0) f32[2]"});
  in = s.Inputs();
  std::swap(in[AdamWMultiLayout{2, false}.grad(0)], in[AdamWMultiLayout{2, false}.grad(1)]);
  ExpectError(s.b.TryEmit("adamw_multi", in, s.Attrs(2)), {"adamw_multi: tensor 0: ", "(g_0) f32[3]"});
  // Integer parameters, and the scalars / grad_sumsq inputs.
  MultiGraph ints({{Shape{2}, DType::kI32}}, false);
  ExpectError(ints.Emit(1), {"adamw_multi: tensor 0: ", "(p_0) i32[2] must be f32, bf16 or f16"});
  MultiGraph sc({{Shape{2}}}, false);
  in = sc.Inputs();
  std::swap(in[0], in[1]);
  ExpectError(sc.b.TryEmit("adamw_multi", in, sc.Attrs(1)), {"adamw_multi: scalars must be f32[5], is f32[]"});
}

TEST(AdamWMulti, AdamWRejectsWhatItRejectedBefore) {
  MultiGraph t({{Shape{2}}, {Shape{3}}}, true);
  ExpectError(t.b.TryEmit("adamw", {t.p[0], t.gr[1], t.m[0], t.v[0], t.scalars, t.sumsq}),
              {"adamw: ", "(grad) f32[3] must have the shape of input 0 (param) f32[2]"});
  TensorSpec bad{Shape{2}};
  bad.v = DType::kBF16;
  bad.w = DType::kF16;
  MultiGraph u({bad}, true);
  ExpectError(u.b.TryEmit("adamw", {u.p[0], u.gr[0], u.m[0], u.v[0], u.scalars, u.sumsq}),
              {"adamw: exp_avg and exp_avg_sq must be f32"});
  u.v[0]->dtype = DType::kF32;
  ExpectError(u.b.TryEmit("adamw", {u.p[0], u.gr[0], u.m[0], u.v[0], u.scalars, u.sumsq, u.w[0]}),
              {"adamw: master weights master must be f32"});
  ExpectError(u.b.TryEmit("adamw", {u.p[0], u.gr[0], u.m[0], u.v[0], u.sumsq, u.sumsq}),
              {"adamw: scalars must be f32[5]"});
  ExpectError(u.b.TryEmit("adamw", {u.p[0], u.gr[0], u.m[0], u.v[0], u.scalars, u.scalars}),
              {"adamw: grad_sumsq must be an f32 scalar"});
}

TEST(AdamWMulti, EveryOutputIsItsInputInPlace) {
  for (bool masters : {false, true}) {
    MultiGraph t({{Shape{3}, DType::kBF16}, {Shape{2, 2}, DType::kBF16}}, masters);
    auto r = t.Emit(2);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const Node& n = *(*r)[0]->producer;
    const std::vector<Value*> in = t.Inputs();
    for (int o = 0; o < static_cast<int>(r->size()); ++o) {
      int input = -1;
      const Alias* a = FindAlias(n, o, &input);
      ASSERT_NE(a, nullptr) << o;
      EXPECT_EQ(a->kind, AliasKind::kInPlace);
      EXPECT_EQ(input, o + 2);
      AliasTarget at = ResolveAlias((*r)[o]);
      EXPECT_EQ(at.root, in[o + 2]) << o;
      EXPECT_EQ(at.byte_offset, 0);
    }
    // Reading an updated value's old version afterwards is a use after an in-place overwrite; the
    // gradients are only read.
    ops::Scale(t.b, t.gr[1], 1.0, "grad_ok");
    ops::Scale(t.b, (*r)[1], 1.0, "new_ok");
    EXPECT_TRUE(Verify(t.g).ok()) << Verify(t.g).ToString();
    ops::Scale(t.b, masters ? t.w[1] : t.v[1], 1.0, "late");
    Status s = Verify(t.g);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find(std::string("uses %") + (masters ? "w1" : "v1") + " after an earlier node overwrote it in place"),
              std::string::npos)
        << s.message();
  }
}

TEST(AdamWMulti, TextRoundTrips) {
  MultiGraph t({{Shape{3}, DType::kBF16, DType::kBF16}, {Shape{7}, DType::kBF16, DType::kBF16}}, true);
  ASSERT_TRUE(t.Emit(2).ok());
  std::string text = PrintGraph(t.g);
  EXPECT_NE(text.find("adamw_multi(%s, %ss, %p0, %p1, %m0, %m1, %v0, %v1, %w0, %w1, %g0, %g1)"), std::string::npos) << text;
  EXPECT_NE(text.find("tensors=2"), std::string::npos) << text;
  auto parsed = ParseGraph(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(Verify(**parsed).ok());
  EXPECT_EQ(PrintGraph(**parsed), text);
}

TEST(AdamWMulti, CostIsTheSumOfAdamWCosts) {
  for (bool masters : {false, true}) {
    MultiGraph t({{Shape{3, 5}, DType::kBF16}, {Shape{7}, DType::kBF16}, {Shape{1}, DType::kBF16}}, masters);
    Cost sum;
    for (size_t i = 0; i < t.p.size(); ++i) {
      std::vector<Value*> in = {t.p[i], t.gr[i], t.m[i], t.v[i], t.scalars, t.sumsq};
      if (masters) in.push_back(t.w[i]);
      Cost c = NodeCost(*t.b.Emit("adamw", in, {{"weight_decay", 0.1}})[0]->producer);
      sum.flops += c.flops;
      sum.bytes_read += c.bytes_read;
      sum.bytes_written += c.bytes_written;
    }
    MultiGraph u({{Shape{3, 5}, DType::kBF16}, {Shape{7}, DType::kBF16}, {Shape{1}, DType::kBF16}}, masters);
    Cost multi = NodeCost(*(*u.Emit(3))[0]->producer);
    EXPECT_EQ(multi.flops, sum.flops);
    EXPECT_EQ(multi.bytes_read, sum.bytes_read);
    EXPECT_EQ(multi.bytes_written, sum.bytes_written);
    EXPECT_EQ(multi.flops, 16.0 * (15 + 7 + 1));
  }
}

}  // namespace
}  // namespace zt::ir
