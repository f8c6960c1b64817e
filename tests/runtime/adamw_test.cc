// The AdamW step as the executor runs it, against a hand-written double-precision AdamW
// (decoupled weight decay, bias correction, gradient multiplier, a learning rate that changes per
// step), for 3 steps: once on a bare adamw node (f32 and bf16 parameters), once through
// AppendBackward + AppendOptimizerStep (no decay for vectors). Also global-norm clipping, the
// overflow skip (non-finite grad_sumsq leaves every state untouched) and f32 master weights. Tolerances: f32 math against double over 3
// steps stays within a few f32 ulps of the parameter (2e-6 absolute for |p| <= ~2); bf16
// parameters are compared after rounding the reference to bf16, within one bf16 ulp (2^-7
// relative); moments (f32) within 1e-6 relative + 2e-7 absolute.
#include <gtest/gtest.h>

#include <cmath>

#include "ir/autodiff.h"
#include "ir/builder.h"
#include "ir/ops/adamw.h"
#include "ir/ops/elementwise.h"
#include "ir/optimizer.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::GraphRunner;
using testing::RandomUniform;

struct Hyper {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-6, weight_decay = 0.1;
};

struct RefState {
  std::vector<double> p, m, v;
};

// One AdamW step in double, as torch.optim.AdamW documents it.
void RefStep(RefState& s, const std::vector<float>& grad, const Hyper& h, double lr, int t, double mult) {
  double bc1 = 1 - std::pow(h.beta1, t), bc2 = 1 - std::pow(h.beta2, t);
  for (size_t i = 0; i < s.p.size(); ++i) {
    double g = grad[i] * mult;
    s.p[i] *= 1 - lr * h.weight_decay;
    s.m[i] = h.beta1 * s.m[i] + (1 - h.beta1) * g;
    s.v[i] = h.beta2 * s.v[i] + (1 - h.beta2) * g * g;
    s.p[i] -= lr / bc1 * s.m[i] / (std::sqrt(s.v[i]) / std::sqrt(bc2) + h.eps);
  }
}

std::vector<float> Scalars(double lr, const Hyper& h, int t, double mult, double max_norm = 0) {
  return {static_cast<float>(lr), static_cast<float>(1 - std::pow(h.beta1, t)), static_cast<float>(1 - std::pow(h.beta2, t)),
          static_cast<float>(mult), static_cast<float>(max_norm)};
}

class AdamWKernel : public ::testing::TestWithParam<DType> {};

TEST_P(AdamWKernel, ThreeStepsMatchDoubleReference) {
  const DType dt = GetParam();
  const int64_t n = 10007;  // several ParallelFor chunks, not a multiple of anything
  Hyper h;
  auto g = std::make_unique<ir::Graph>("adamw");
  ir::Builder b(g.get());
  ir::Value* p = b.Param("p", dt, Shape{n});
  ir::Value* gr = b.Input("g", dt, Shape{n});
  ir::Value* m = b.State("m", DType::kF32, Shape{n}, MemCategory::kOptimizerState);
  ir::Value* v = b.State("v", DType::kF32, Shape{n}, MemCategory::kOptimizerState);
  ir::Value* s = b.Input("s", DType::kF32, Shape{ir::kAdamWScalars});
  ir::Value* ss = b.Input("ss", DType::kF32, Shape{});
  b.set_phase(ir::Phase::kOptimizer);
  b.Emit("adamw", {p, gr, m, v, s, ss},
         {{"beta1", h.beta1}, {"beta2", h.beta2}, {"eps", h.eps}, {"weight_decay", h.weight_decay}}, "upd");
  GraphRunner r(std::move(g));
  r.Set("ss", {1.0f});  // finite, and no clipping (max_norm 0)

  std::vector<float> p0 = testing::RoundTo(dt, RandomUniform(n, 1, -2.0f, 2.0f));
  RefState ref{std::vector<double>(p0.begin(), p0.end()), std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
  r.Set("p", p0);
  r.Set("m", std::vector<float>(n, 0.0f));
  r.Set("v", std::vector<float>(n, 0.0f));
  const double lrs[] = {1e-2, 3e-2, 5e-3};
  const double mults[] = {1.0, 0.25, 2.0};
  for (int t = 1; t <= 3; ++t) {
    std::vector<float> grad = testing::RoundTo(dt, RandomUniform(n, 100 + t, -1.0f, 1.0f));
    grad[0] = 0.0f;  // a zero gradient: only decay moves the parameter
    r.Set("g", grad);
    r.Set("s", Scalars(lrs[t - 1], h, t, mults[t - 1]));
    r.Run();
    RefStep(ref, grad, h, lrs[t - 1], t, mults[t - 1]);
    if (dt != DType::kF32) {  // the parameter is stored rounded after every step
      std::vector<float> pr(ref.p.begin(), ref.p.end());
      pr = testing::RoundTo(dt, pr);
      for (int64_t i = 0; i < n; ++i) ref.p[i] = pr[i];
    }
    auto pv = r.Get("p"), mv = r.Get("m"), vv = r.Get("v");
    int bad = 0;
    for (int64_t i = 0; i < n && bad < 10; ++i) {
      double ptol = dt == DType::kF32 ? 2e-6 : std::fabs(ref.p[i]) * std::ldexp(1.0, -7) + 1e-6;
      bool ok = std::fabs(pv[i] - ref.p[i]) <= ptol &&
                std::fabs(mv[i] - ref.m[i]) <= 1e-6 * std::fabs(ref.m[i]) + 2e-7 &&
                std::fabs(vv[i] - ref.v[i]) <= 1e-5 * std::fabs(ref.v[i]) + 1e-9;
      if (!ok) {
        ++bad;
        ADD_FAILURE() << DTypeName(dt) << " step " << t << " element " << i << ": p " << pv[i] << " vs " << ref.p[i]
                      << ", m " << mv[i] << " vs " << ref.m[i] << ", v " << vv[i] << " vs " << ref.v[i];
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, AdamWKernel, ::testing::Values(DType::kF32, DType::kBF16),
                         [](const ::testing::TestParamInfo<DType>& i) { return std::string(DTypeName(i.param)); });

// loss = sum(w * x + bias) with w:[3,4], bias:[4]: dL/dw = x, dL/dbias = 3 (rows). The optimizer
// step with no_decay_for_vectors decays w but not bias.
TEST(AdamWStep, ThroughAutodiffAndAppendOptimizerStep) {
  auto g = std::make_unique<ir::Graph>("train");
  ir::Builder b(g.get());
  ir::Value* w = b.Param("w", DType::kF32, Shape{3, 4});
  ir::Value* bias = b.Param("bias", DType::kF32, Shape{4});
  ir::Value* x = b.Input("x", DType::kF32, Shape{3, 4});
  ir::Value* loss = ir::ops::ReduceSumTo(b, ir::ops::Add(b, ir::ops::Mul(b, w, x), bias), Shape{}, "loss");
  ASSERT_TRUE(ir::AppendBackward(*g, loss, ir::ParamsOf(*g)).ok());
  ir::AdamWOptions o;
  o.beta1 = 0.8;
  o.beta2 = 0.99;
  o.eps = 1e-8;
  o.weight_decay = 0.05;
  o.no_decay_for_vectors = true;
  ASSERT_TRUE(ir::AppendOptimizerStep(*g, {.adamw = o}).ok());
  EXPECT_EQ(ir::AppendOptimizerStep(*g, {.adamw = o}).code(), StatusCode::kFailedPrecondition);
  GraphRunner r(std::move(g));

  Hyper hw{o.beta1, o.beta2, o.eps, o.weight_decay};
  Hyper hb{o.beta1, o.beta2, o.eps, 0.0};
  auto w0 = RandomUniform(12, 7), x0 = RandomUniform(12, 8);
  std::vector<float> b0 = {0.5f, -0.5f, 1.0f, 0.0f};
  RefState rw{std::vector<double>(w0.begin(), w0.end()), std::vector<double>(12, 0.0), std::vector<double>(12, 0.0)};
  RefState rb{std::vector<double>(b0.begin(), b0.end()), std::vector<double>(4, 0.0), std::vector<double>(4, 0.0)};
  r.Set("w", w0);
  r.Set("bias", b0);
  r.Set("x", x0);
  r.Set("w.exp_avg", std::vector<float>(12, 0.0f));
  r.Set("w.exp_avg_sq", std::vector<float>(12, 0.0f));
  r.Set("bias.exp_avg", std::vector<float>(4, 0.0f));
  r.Set("bias.exp_avg_sq", std::vector<float>(4, 0.0f));
  for (int t = 1; t <= 3; ++t) {
    double lr = 0.01 * t, mult = t == 2 ? 0.5 : 1.0;
    r.Set(ir::kAdamWScalarsInput, Scalars(lr, hw, t, mult));
    r.Run();
    RefStep(rw, x0, hw, lr, t, mult);
    RefStep(rb, std::vector<float>(4, 3.0f), hb, lr, t, mult);
    auto wv = r.Get("w"), bv = r.Get("bias");
    for (int i = 0; i < 12; ++i) EXPECT_NEAR(wv[i], rw.p[i], 2e-6) << "step " << t << " w[" << i << "]";
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(bv[i], rb.p[i], 2e-6) << "step " << t << " bias[" << i << "]";
  }
  // The decay really differs: with weight decay on the bias the result would move.
  RefState rb_decayed{std::vector<double>(b0.begin(), b0.end()), std::vector<double>(4, 0.0), std::vector<double>(4, 0.0)};
  for (int t = 1; t <= 3; ++t) RefStep(rb_decayed, std::vector<float>(4, 3.0f), hw, 0.01 * t, t, t == 2 ? 0.5 : 1.0);
  EXPECT_GT(std::fabs(rb_decayed.p[0] - rb.p[0]), 1e-5);
}

// A bare adamw node on n elements with its inputs, for the clipping / skip / master tests.
struct OneUpdate {
  std::unique_ptr<GraphRunner> r;
  explicit OneUpdate(DType dt, bool master, int64_t n) {
    Hyper h;
    auto g = std::make_unique<ir::Graph>("adamw");
    ir::Builder b(g.get());
    std::vector<ir::Value*> in = {b.Param("p", dt, Shape{n}), b.Input("g", DType::kF32, Shape{n}),
                                  b.State("m", DType::kF32, Shape{n}, MemCategory::kOptimizerState),
                                  b.State("v", DType::kF32, Shape{n}, MemCategory::kOptimizerState),
                                  b.Input("s", DType::kF32, Shape{ir::kAdamWScalars}), b.Input("ss", DType::kF32, Shape{})};
    if (master) in.push_back(b.State("w", DType::kF32, Shape{n}, MemCategory::kOptimizerState));
    b.Emit("adamw", in, {{"beta1", h.beta1}, {"beta2", h.beta2}, {"eps", h.eps}, {"weight_decay", h.weight_decay}}, "upd");
    r = std::make_unique<GraphRunner>(std::move(g));
    r->Set("m", std::vector<float>(n, 0.0f));
    r->Set("v", std::vector<float>(n, 0.0f));
  }
};

TEST(AdamWStep, ClipsToTheGlobalNorm) {
  const int64_t n = 5;
  OneUpdate u(DType::kF32, false, n);
  std::vector<float> p0 = {1, -1, 0.5f, 2, 0}, grad = {3, 4, 0, 0, 0};  // stored grads, norm 5
  u.r->Set("p", p0);
  u.r->Set("g", grad);
  u.r->Set("ss", {25.0f});
  const double mult = 0.5, max_norm = 1.0;  // true norm 2.5 -> clip by 1/(2.5 + 1e-6)
  Hyper h;
  u.r->Set("s", Scalars(0.1, h, 1, mult, max_norm));
  u.r->Run();
  RefState ref{std::vector<double>(p0.begin(), p0.end()), std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
  RefStep(ref, grad, h, 0.1, 1, mult * max_norm / (2.5 + 1e-6));
  auto pv = u.r->Get("p"), mv = u.r->Get("m");
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_NEAR(pv[i], ref.p[i], 2e-6) << i;
    EXPECT_NEAR(mv[i], ref.m[i], 1e-7) << i;
  }
  // Below the threshold nothing is clipped: m = (1 - beta1) * g * mult.
  OneUpdate w(DType::kF32, false, n);
  w.r->Set("p", p0);
  w.r->Set("g", grad);
  w.r->Set("ss", {25.0f});
  w.r->Set("s", Scalars(0.1, h, 1, mult, 10.0));
  w.r->Run();
  EXPECT_NEAR(w.r->Get("m")[1], (1 - h.beta1) * 4 * mult, 1e-7);
}

TEST(AdamWStep, NonFiniteSumOfSquaresSkipsTheUpdate) {
  for (float bad : {INFINITY, NAN}) {
    OneUpdate u(DType::kF32, true, 3);
    u.r->Set("p", {1, 2, 3});
    u.r->Set("w", {1, 2, 3});
    u.r->Set("m", {0.1f, 0.2f, 0.3f});
    u.r->Set("g", {INFINITY, 1, NAN});
    u.r->Set("ss", {bad});
    u.r->Set("s", Scalars(0.1, Hyper{}, 1, 1.0, 1.0));
    u.r->Run();
    EXPECT_EQ(u.r->Get("p"), (std::vector<float>{1, 2, 3}));
    EXPECT_EQ(u.r->Get("w"), (std::vector<float>{1, 2, 3}));
    EXPECT_EQ(u.r->Get("m"), (std::vector<float>{0.1f, 0.2f, 0.3f}));
    EXPECT_EQ(u.r->Get("v"), (std::vector<float>{0, 0, 0}));
  }
}

TEST(AdamWStep, MasterWeightsCarryTheUpdateAndParamIsItsRounding) {
  // bf16 parameter with an f32 master: the master follows the f32 reference exactly as an f32
  // parameter would; the parameter is the master rounded to bf16 after every step (small updates
  // that bf16 alone would lose are kept by the master).
  const int64_t n = 257;
  OneUpdate u(DType::kBF16, true, n);
  std::vector<float> w0 = RandomUniform(n, 3, -2.0f, 2.0f);
  u.r->Set("w", w0);
  u.r->Set("p", testing::RoundTo(DType::kBF16, w0));
  u.r->Set("ss", {1.0f});
  Hyper h;
  RefState ref{std::vector<double>(w0.begin(), w0.end()), std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
  for (int t = 1; t <= 3; ++t) {
    auto grad = RandomUniform(n, 50 + t);
    u.r->Set("g", grad);
    u.r->Set("s", Scalars(1e-4, h, t, 1.0));
    u.r->Run();
    RefStep(ref, grad, h, 1e-4, t, 1.0);
  }
  auto wv = u.r->Get("w"), pv = u.r->Get("p");
  int moved_below_bf16 = 0;
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_NEAR(wv[i], ref.p[i], 2e-6) << i;
    EXPECT_EQ(pv[i], BF16ToFloat(FloatToBF16(wv[i]))) << i;
    moved_below_bf16 += wv[i] != w0[i] && BF16ToFloat(FloatToBF16(w0[i])) == pv[i];
  }
  EXPECT_GT(moved_below_bf16, 0) << "the master must keep updates smaller than a bf16 step";
}

}  // namespace
}  // namespace zt
