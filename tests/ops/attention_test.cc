// Attention family: forward (out and lse) against a naive double softmax reference for causal and
// non-causal, MHA / GQA / MQA, T = 1, odd sizes and S != T; bf16/f16 storage; backward against a
// naive double reference (including the lse output's gradient) and against finite differences;
// large logits; thread-count determinism; shape-rule rejections; cost.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>

#include "ir/autodiff.h"
#include "ir/ops/attention.h"
#include "ir/ops/elementwise.h"
#include "support/gradcheck.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::GradCheck;
using testing::GradInput;
using testing::GraphRunner;
using testing::RandomUniform;

struct AttnCase {
  int64_t B, T, H, S, Hkv, D;
  bool causal;
  double scale = 0.0;  // 0: 1/sqrt(D)
  Shape q() const { return Shape{B, T, H, D}; }
  Shape kv() const { return Shape{B, S, Hkv, D}; }
};

std::string Name(const AttnCase& c) {
  return "B" + std::to_string(c.B) + "T" + std::to_string(c.T) + "H" + std::to_string(c.H) + "S" +
         std::to_string(c.S) + "Hkv" + std::to_string(c.Hkv) + "D" + std::to_string(c.D) +
         (c.causal ? "causal" : "full") + (c.scale != 0 ? "scaled" : "");
}

void PrintTo(const AttnCase& c, std::ostream* os) { *os << Name(c); }

// Full probability matrix P[b][h][t][s] in double (masked entries 0) and lse[b][h][t].
struct RefProbs {
  std::vector<double> p, lse;
};

RefProbs Probs(const AttnCase& c, const std::vector<float>& q, const std::vector<float>& k) {
  const double scale = c.scale != 0 ? c.scale : 1.0 / std::sqrt(static_cast<double>(c.D));
  const int64_t group = c.H / c.Hkv;
  RefProbs r;
  r.p.assign(c.B * c.H * c.T * c.S, 0.0);
  r.lse.assign(c.B * c.H * c.T, 0.0);
  std::vector<double> logit(c.S);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t t = 0; t < c.T; ++t) {
        const int64_t kh = h / group;
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t s = 0; s < c.S; ++s) {
          bool visible = !c.causal || s <= t + (c.S - c.T);
          if (!visible) {
            logit[s] = -std::numeric_limits<double>::infinity();
            continue;
          }
          double dot = 0;
          for (int64_t d = 0; d < c.D; ++d)
            dot += static_cast<double>(q[((b * c.T + t) * c.H + h) * c.D + d]) * k[((b * c.S + s) * c.Hkv + kh) * c.D + d];
          logit[s] = scale * dot;
          mx = std::max(mx, logit[s]);
        }
        double sum = 0;
        for (int64_t s = 0; s < c.S; ++s) sum += std::exp(logit[s] - mx);
        const int64_t row = (b * c.H + h) * c.T + t;
        for (int64_t s = 0; s < c.S; ++s) r.p[row * c.S + s] = std::exp(logit[s] - mx) / sum;
        r.lse[row] = mx + std::log(sum);
      }
  return r;
}

std::vector<double> RefOut(const AttnCase& c, const RefProbs& pr, const std::vector<float>& v) {
  const int64_t group = c.H / c.Hkv;
  std::vector<double> out(c.B * c.T * c.H * c.D, 0.0);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t t = 0; t < c.T; ++t)
        for (int64_t s = 0; s < c.S; ++s) {
          double p = pr.p[((b * c.H + h) * c.T + t) * c.S + s];
          for (int64_t d = 0; d < c.D; ++d)
            out[((b * c.T + t) * c.H + h) * c.D + d] += p * v[((b * c.S + s) * c.Hkv + h / group) * c.D + d];
        }
  return out;
}

// Gradients of L = <out, r_out> + <lse, r_lse> by the textbook formulas over the full matrix:
// dP = r_out V^T, dlogit = P * (dP - rowsum(P * dP)) + P * r_lse, dQ = scale dlogit K, dK = scale dlogit^T Q,
// dV = P^T r_out, with query heads of a group summed into their kv head.
struct RefGrads {
  std::vector<double> dq, dk, dv;
};

RefGrads RefBackward(const AttnCase& c, const std::vector<float>& q, const std::vector<float>& k,
                     const std::vector<float>& v, const std::vector<float>& r_out, const std::vector<float>& r_lse) {
  const double scale = c.scale != 0 ? c.scale : 1.0 / std::sqrt(static_cast<double>(c.D));
  const int64_t group = c.H / c.Hkv;
  RefProbs pr = Probs(c, q, k);
  RefGrads g;
  g.dq.assign(q.size(), 0.0);
  g.dk.assign(k.size(), 0.0);
  g.dv.assign(v.size(), 0.0);
  std::vector<double> dp(c.S);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t t = 0; t < c.T; ++t) {
        const int64_t kh = h / group;
        const int64_t row = (b * c.H + h) * c.T + t;
        const int64_t qrow = ((b * c.T + t) * c.H + h) * c.D;
        double rowsum = 0;
        for (int64_t s = 0; s < c.S; ++s) {
          const int64_t krow = ((b * c.S + s) * c.Hkv + kh) * c.D;
          dp[s] = 0;
          for (int64_t d = 0; d < c.D; ++d) dp[s] += static_cast<double>(r_out[qrow + d]) * v[krow + d];
          rowsum += pr.p[row * c.S + s] * dp[s];
        }
        for (int64_t s = 0; s < c.S; ++s) {
          const int64_t krow = ((b * c.S + s) * c.Hkv + kh) * c.D;
          double p = pr.p[row * c.S + s];
          double dl = p * (dp[s] - rowsum) + (r_lse.empty() ? 0.0 : p * r_lse[row]);
          for (int64_t d = 0; d < c.D; ++d) {
            g.dq[qrow + d] += scale * dl * k[krow + d];
            g.dk[krow + d] += scale * dl * q[qrow + d];
            g.dv[krow + d] += p * r_out[qrow + d];
          }
        }
      }
  return g;
}

const std::vector<AttnCase> kCases = {
    {1, 1, 1, 1, 1, 1, true},   // everything size 1
    {2, 5, 2, 5, 2, 3, true},   // H == Hkv, odd D, T = 5
    {1, 5, 4, 5, 2, 3, true},   // GQA: 2 query heads per kv head
    {2, 4, 3, 4, 1, 4, true},   // MQA: Hkv = 1
    {1, 3, 2, 7, 2, 5, false},  // S != T, non-causal
    {1, 3, 4, 6, 2, 4, true},   // causal with S > T: bottom-right aligned
    {2, 1, 4, 6, 1, 8, true},   // T = 1 (decode): sees every key
    {1, 5, 2, 5, 2, 3, false},  // non-causal S == T
    {1, 1, 2, 3, 1, 2, false},  // T = 1 non-causal, MQA
    {2, 6, 6, 9, 3, 7, true, 0.3},   // explicit scale, GQA, S > T
    {1, 7, 4, 2, 4, 5, false, 1.7},  // S < T non-causal
};

void CheckForward(const AttnCase& c, DType dtype, double tol) {
  auto g = std::make_unique<ir::Graph>("attn");
  ir::Builder b(g.get());
  auto* q = b.Input("q", dtype, c.q());
  auto* k = b.Input("k", dtype, c.kv());
  auto* v = b.Input("v", dtype, c.kv());
  auto outs = ir::ops::Attention(b, q, k, v, c.causal, c.scale, "out");
  ASSERT_EQ(outs.size(), 2u);
  EXPECT_EQ(outs[0]->dtype, dtype);
  EXPECT_EQ(outs[1]->dtype, DType::kF32);
  EXPECT_EQ(outs[1]->shape, Shape({c.B, c.H, c.T}));
  g->outputs() = outs;
  std::string lse_name = outs[1]->name;
  GraphRunner r(std::move(g));
  auto qv = testing::RoundTo(dtype, RandomUniform(c.q().numel(), 31, -2.0f, 2.0f));
  auto kv = testing::RoundTo(dtype, RandomUniform(c.kv().numel(), 32, -2.0f, 2.0f));
  auto vv = testing::RoundTo(dtype, RandomUniform(c.kv().numel(), 33));
  r.Set("q", qv);
  r.Set("k", kv);
  r.Set("v", vv);
  r.Run();
  RefProbs pr = Probs(c, qv, kv);
  auto ref = RefOut(c, pr, vv);
  auto out = r.Get("out");
  auto lse = r.Get(lse_name);
  ASSERT_EQ(out.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(out[i], ref[i], tol * (1 + std::fabs(ref[i]))) << "out " << i;
  // lse is computed in f64 and stored f32 whatever the storage dtype.
  ASSERT_EQ(lse.size(), pr.lse.size());
  for (size_t i = 0; i < pr.lse.size(); ++i) EXPECT_NEAR(lse[i], pr.lse[i], 1e-5 * (1 + std::fabs(pr.lse[i]))) << "lse " << i;
}

// Gradients from autodiff + the executor for L = <out, r_out> (+ <lse, r_lse> if with_lse).
struct GraphGrads {
  std::vector<float> dq, dk, dv;
};

GraphGrads RunBackward(const AttnCase& c, const std::vector<float>& qv, const std::vector<float>& kv,
                       const std::vector<float>& vv, const std::vector<float>& r_out,
                       const std::vector<float>& r_lse) {
  auto g = std::make_unique<ir::Graph>("attn_bwd");
  ir::Builder b(g.get());
  auto* q = b.Param("q", DType::kF32, c.q());
  auto* k = b.Param("k", DType::kF32, c.kv());
  auto* v = b.Param("v", DType::kF32, c.kv());
  auto outs = ir::ops::Attention(b, q, k, v, c.causal, c.scale, "out");
  auto* ro = b.Input("r_out", DType::kF32, c.q());
  ir::Value* loss = ir::ops::ReduceSumTo(b, ir::ops::Mul(b, outs[0], ro), Shape{}, "l_out");
  if (!r_lse.empty()) {
    auto* rl = b.Input("r_lse", DType::kF32, outs[1]->shape);
    loss = ir::ops::Add(b, loss, ir::ops::ReduceSumTo(b, ir::ops::Mul(b, outs[1], rl), Shape{}, "l_lse"), "loss");
  }
  g->outputs() = {loss};
  EXPECT_TRUE(ir::AppendBackward(*g, loss, {q, k, v}).ok());
  GraphRunner r(std::move(g));
  r.Set("q", qv);
  r.Set("k", kv);
  r.Set("v", vv);
  r.Set("r_out", r_out);
  if (!r_lse.empty()) r.Set("r_lse", r_lse);
  r.Run();
  GraphGrads out;
  out.dq = r.Get(r.graph().GradOf(r.value("q")));
  out.dk = r.Get(r.graph().GradOf(r.value("k")));
  out.dv = r.Get(r.graph().GradOf(r.value("v")));
  return out;
}

void ExpectClose(const std::vector<float>& got, const std::vector<double>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol * (1 + std::fabs(want[i]))) << what << "[" << i << "]";
}

void CheckBackward(const AttnCase& c, bool with_lse, float lo, float hi) {
  auto qv = RandomUniform(c.q().numel(), 41, lo, hi);
  auto kv = RandomUniform(c.kv().numel(), 42, lo, hi);
  auto vv = RandomUniform(c.kv().numel(), 43);
  auto ro = RandomUniform(c.q().numel(), 44);
  std::vector<float> rl = with_lse ? RandomUniform(c.B * c.H * c.T, 45) : std::vector<float>{};
  GraphGrads got = RunBackward(c, qv, kv, vv, ro, rl);
  RefGrads want = RefBackward(c, qv, kv, vv, ro, rl);
  ExpectClose(got.dq, want.dq, 2e-5, "dq");
  ExpectClose(got.dk, want.dk, 2e-5, "dk");
  ExpectClose(got.dv, want.dv, 2e-5, "dv");
}

class AttnCaseTest : public ::testing::TestWithParam<AttnCase> {};

// f32: f64 accumulation inside, one f32 rounding of the result.
TEST_P(AttnCaseTest, ForwardF32) { CheckForward(GetParam(), DType::kF32, 1e-5); }
// bf16 / f16 storage: inputs rounded before the reference is computed; the output is rounded once
// (bf16: 8 bits, f16: 11 bits of mantissa).
TEST_P(AttnCaseTest, ForwardBf16) { CheckForward(GetParam(), DType::kBF16, 8e-3); }
TEST_P(AttnCaseTest, ForwardF16) { CheckForward(GetParam(), DType::kF16, 1e-3); }

// Backward against the double reference: f32 accumulators for dk/dv, hence 2e-5.
TEST_P(AttnCaseTest, BackwardMatchesReference) { CheckBackward(GetParam(), false, -2.0f, 2.0f); }
TEST_P(AttnCaseTest, BackwardWithLseGradientMatchesReference) { CheckBackward(GetParam(), true, -2.0f, 2.0f); }

TEST_P(AttnCaseTest, GradCheck) {
  const AttnCase c = GetParam();
  GradCheck({{"q", c.q()}, {"k", c.kv()}, {"v", c.kv()}}, [c](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return std::vector<ir::Value*>{ir::ops::Attention(b, v[0], v[1], v[2], c.causal, c.scale)[0]};
  });
}

// Both outputs carry a gradient: exercises attention_bwd's dlse input.
TEST_P(AttnCaseTest, GradCheckWithLse) {
  const AttnCase c = GetParam();
  GradCheck({{"q", c.q()}, {"k", c.kv()}, {"v", c.kv()}}, [c](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return ir::ops::Attention(b, v[0], v[1], v[2], c.causal, c.scale);
  });
}

INSTANTIATE_TEST_SUITE_P(All, AttnCaseTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<AttnCase>& i) { return Name(i.param); });

// Only lse feeds the loss: the backward rule supplies a zero dout.
TEST(Attention, GradCheckLseOnly) {
  AttnCase c{1, 4, 2, 4, 1, 3, true};
  GradCheck({{"q", c.q()}, {"k", c.kv()}, {"v", c.kv()}}, [c](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return std::vector<ir::Value*>{ir::ops::Attention(b, v[0], v[1], v[2], c.causal)[1]};
  });
}

TEST(Attention, CausalSelfAttentionHelper) {
  ir::Graph g("h");
  ir::Builder b(&g);
  auto* q = b.Input("q", DType::kF32, Shape{1, 3, 2, 4});
  auto* k = b.Input("k", DType::kF32, Shape{1, 3, 1, 4});
  auto* out = ir::ops::CausalSelfAttention(b, q, k, k, "o");
  EXPECT_EQ(out->shape, q->shape);
  EXPECT_TRUE(out->producer->attrs.GetBool("causal"));
  EXPECT_EQ(out->producer->attrs.GetFloat("scale"), 0.0);
  EXPECT_EQ(out->producer->outputs[1]->name, "o.lse");
}

// Logits of several hundred: the max-subtracted softmax stays finite and exact, and the backward
// (p recomputed from lse) matches the reference.
TEST(Attention, LargeLogitsAreStable) {
  for (bool causal : {true, false}) {
    AttnCase c{1, 6, 2, 6, 1, 8, causal};
    CheckForward(c, DType::kF32, 1e-5);  // inputs in [-2, 2]: logits up to ~11
    auto qv = RandomUniform(c.q().numel(), 51, -30.0f, 30.0f);
    auto kv = RandomUniform(c.kv().numel(), 52, -30.0f, 30.0f);
    auto vv = RandomUniform(c.kv().numel(), 53);
    auto g = std::make_unique<ir::Graph>("big");
    ir::Builder b(g.get());
    auto outs = ir::ops::Attention(b, b.Input("q", DType::kF32, c.q()), b.Input("k", DType::kF32, c.kv()),
                                   b.Input("v", DType::kF32, c.kv()), causal, 0.0, "out");
    g->outputs() = outs;
    std::string lse_name = outs[1]->name;
    GraphRunner r(std::move(g));
    r.Set("q", qv);
    r.Set("k", kv);
    r.Set("v", vv);
    r.Run();
    RefProbs pr = Probs(c, qv, kv);
    double max_abs_lse = 0;
    for (double l : pr.lse) max_abs_lse = std::max(max_abs_lse, std::fabs(l));
    EXPECT_GT(max_abs_lse, 100.0) << "test data should give large logits";
    auto out = r.Get("out");
    auto lse = r.Get(lse_name);
    auto ref = RefOut(c, pr, vv);
    for (size_t i = 0; i < ref.size(); ++i) {
      ASSERT_TRUE(std::isfinite(out[i]));
      EXPECT_NEAR(out[i], ref[i], 1e-5 * (1 + std::fabs(ref[i])));
    }
    for (size_t i = 0; i < lse.size(); ++i) EXPECT_NEAR(lse[i], pr.lse[i], 1e-5 * (1 + std::fabs(pr.lse[i])));
    // Backward: p = exp(logit - lse) with lse rounded to f32 (relative 6e-8 of ~|lse|), so the
    // probabilities carry ~1e-5 relative error here; gradients scale with |q|, |k| ~ 30.
    auto ro = RandomUniform(c.q().numel(), 54);
    GraphGrads got = RunBackward(c, qv, kv, vv, ro, {});
    RefGrads want = RefBackward(c, qv, kv, vv, ro, {});
    for (auto* v : {&got.dq, &got.dk, &got.dv})
      for (float x : *v) ASSERT_TRUE(std::isfinite(x));
    ExpectClose(got.dq, want.dq, 1e-3, "dq");
    ExpectClose(got.dk, want.dk, 1e-3, "dk");
    ExpectClose(got.dv, want.dv, 1e-4, "dv");
  }
}

TEST(Attention, BackwardIsDeterministicAcrossThreadCounts) {
  AttnCase c{2, 9, 4, 9, 2, 6, true};
  auto qv = RandomUniform(c.q().numel(), 61), kv = RandomUniform(c.kv().numel(), 62);
  auto vv = RandomUniform(c.kv().numel(), 63), ro = RandomUniform(c.q().numel(), 64);
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  GraphGrads one = RunBackward(c, qv, kv, vv, ro, {});
  omp_set_num_threads(4);
  GraphGrads four = RunBackward(c, qv, kv, vv, ro, {});
  omp_set_num_threads(saved);
  EXPECT_EQ(one.dq, four.dq);
  EXPECT_EQ(one.dk, four.dk);
  EXPECT_EQ(one.dv, four.dv);
}

// Expects TryEmit(op, inputs, attrs) to fail with a message containing every string in `want`.
void ExpectRejected(ir::Builder& b, const std::string& op, std::vector<ir::Value*> in, ir::AttrMap attrs,
                    std::vector<std::string> want) {
  auto r = b.TryEmit(op, std::move(in), std::move(attrs));
  ASSERT_FALSE(r.ok()) << op << " accepted bad inputs";
  for (auto& w : want) EXPECT_NE(r.status().message().find(w), std::string::npos) << r.status().message();
}

TEST(Attention, RejectsBadInputs) {
  ir::Graph g("bad");
  ir::Builder b(&g);
  auto* q = b.Input("q", DType::kF32, Shape{2, 4, 4, 8});
  auto* k = b.Input("k", DType::kF32, Shape{2, 4, 2, 8});
  auto* v = b.Input("v", DType::kF32, Shape{2, 4, 2, 8});
  ASSERT_TRUE(b.TryEmit("attention", {q, k, v}).ok());
  ExpectRejected(b, "attention", {b.Input("q3", DType::kF32, Shape{4, 4, 8}), k, v}, {}, {"(q)", "rank 4"});
  ExpectRejected(b, "attention", {q, b.Input("kh", DType::kBF16, Shape{2, 4, 2, 8}), v}, {}, {"(k)", "dtype"});
  ExpectRejected(b, "attention", {q, k, b.Input("vs", DType::kF32, Shape{2, 5, 2, 8})}, {}, {"(v)", "shape"});
  ExpectRejected(b, "attention", {q, b.Input("k3", DType::kF32, Shape{2, 4, 3, 8}), b.Input("v3", DType::kF32, Shape{2, 4, 3, 8})},
                 {}, {"(q)", "(k)", "multiple"});
  ExpectRejected(b, "attention", {q, b.Input("kd", DType::kF32, Shape{2, 4, 2, 6}), b.Input("vd", DType::kF32, Shape{2, 4, 2, 6})},
                 {}, {"(k)", "head dim"});
  ExpectRejected(b, "attention", {q, b.Input("kb", DType::kF32, Shape{1, 4, 2, 8}), b.Input("vb", DType::kF32, Shape{1, 4, 2, 8})},
                 {}, {"(k)", "batch"});
  auto* ks = b.Input("ks", DType::kF32, Shape{2, 3, 2, 8});
  auto* vs = b.Input("vs2", DType::kF32, Shape{2, 3, 2, 8});
  ExpectRejected(b, "attention", {q, ks, vs}, {{"causal", true}}, {"(k)", "causal"});
  EXPECT_TRUE(b.TryEmit("attention", {q, ks, vs}, {{"causal", false}}).ok());  // S < T is fine without a mask
  ExpectRejected(b, "attention", {b.Input("qi", DType::kI32, Shape{2, 4, 4, 8}), k, v}, {}, {"(q)"});

  // attention_bwd: dout, out must match q; lse must be f32 [B, H, T].
  auto outs = ir::ops::Attention(b, q, k, v, true);
  auto* lse_bad = b.Input("lse_bad", DType::kBF16, Shape{2, 4, 4});
  ExpectRejected(b, "attention_bwd", {outs[0], q, k, v, outs[0], lse_bad}, {}, {"(lse)", "f32[2,4,4]"});
  auto* dout_bad = b.Input("dout_bad", DType::kF32, Shape{2, 4, 4, 7});
  ExpectRejected(b, "attention_bwd", {dout_bad, q, k, v, outs[0], outs[1]}, {}, {"(dout)"});
  ExpectRejected(b, "attention_bwd", {outs[0], q, k, v, outs[0], outs[1], lse_bad}, {}, {"(dlse)"});
  EXPECT_TRUE(b.TryEmit("attention_bwd", {outs[0], q, k, v, outs[0], outs[1]}).ok());
}

TEST(Attention, CostAndWorkspace) {
  ir::Graph g("cost");
  ir::Builder b(&g);
  auto* q = b.Input("q", DType::kF32, Shape{2, 4, 3, 8});
  auto* k = b.Input("k", DType::kF32, Shape{2, 5, 1, 8});
  auto full = ir::ops::Attention(b, q, k, k, false);
  const double fwd = 4.0 * 2 * 3 * 4 * 5 * 8;
  ir::Cost c = ir::NodeCost(*full[0]->producer);
  EXPECT_DOUBLE_EQ(c.flops, fwd);
  EXPECT_DOUBLE_EQ(c.bytes_read, (2 * 4 * 3 * 8 + 2 * 2 * 5 * 1 * 8) * 4.0);
  EXPECT_DOUBLE_EQ(c.bytes_written, (2 * 4 * 3 * 8 + 2 * 3 * 4) * 4.0);
  EXPECT_GT(ir::NodeWorkspace(*full[0]->producer), 0u);
  auto causal = ir::ops::Attention(b, q, k, k, true);
  EXPECT_DOUBLE_EQ(ir::NodeCost(*causal[0]->producer).flops, 0.5 * fwd);  // causal: halved
  auto bwd = b.Emit("attention_bwd", {causal[0], q, k, k, causal[0], causal[1]}, {{"causal", true}});
  EXPECT_DOUBLE_EQ(ir::NodeCost(*bwd[0]->producer).flops, 2.5 * 0.5 * fwd);
  EXPECT_GT(ir::NodeWorkspace(*bwd[0]->producer), 0u);
}

}  // namespace
}  // namespace zt
