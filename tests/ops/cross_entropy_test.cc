// Cross-entropy: loss and lse against a double-precision reference written here (ignore_index
// rows, custom ignore_index, i32/i64 targets, V = 1 and V = 37, zero rows, 1e4-scale logits, bf16/f16
// storage), dlogits against the analytic double formula, the all-ignored case (loss 0, zero
// gradients), finite-difference gradcheck of logits, the lse gradient being ignored, shape-rule
// rejections, costs, and CHECK-failure on an out-of-range target. The `classes` attribute (a
// padded vocabulary): padded logits holding large garbage give exactly the loss, lse and dlogits of
// the unpadded logits, with exact zeros in the padding's dlogits (through autodiff, so the backward
// rule must pass the attribute on); gradcheck with padding; attribute range, cost, text round trip,
// and targets in the padding CHECK-failing.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "ir/autodiff.h"
#include "ir/ops/cross_entropy.h"
#include "ir/text.h"
#include "ir/ops/elementwise.h"
#include "kernels/cpu/cross_entropy.h"
#include "support/gradcheck.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::GradCheck;
using testing::GraphRunner;
using testing::RandomInts;
using testing::RandomUniform;

constexpr int64_t kIgnore = -100;

struct Case {
  std::vector<int64_t> logits;  // [..., V]
  int64_t ignore_index;
  std::vector<int64_t> ignored_rows;  // rows whose target is set to ignore_index
};

const std::vector<Case> kCases = {
    {{4, 37}, kIgnore, {1}},          {{2, 3, 5}, kIgnore, {0, 4}}, {{1, 1}, kIgnore, {}},
    {{7, 1}, kIgnore, {3}},           {{1, 37}, kIgnore, {}},       {{3, 64}, 0, {2}},
    {{5, 300}, -1, {0, 1, 4}},        {{37}, kIgnore, {}},          {{2, 2, 2, 3}, 7, {5}},       {{0, 5}, kIgnore, {}},
};

// Readable parameter names in failure messages.
void PrintTo(const Case& k, std::ostream* os) {
  *os << "logits" << Shape(k.logits) << " ignore_index " << k.ignore_index << " (" << k.ignored_rows.size()
      << " rows ignored)";
}

std::string CaseName(const ::testing::TestParamInfo<Case>& i) { return "case" + std::to_string(i.index); }

int64_t Rows(const Case& k) { return Shape(k.logits).numel() / k.logits.back(); }
Shape TargetShape(const Case& k) { return Shape(k.logits).Slice(0, -1); }

std::vector<int64_t> MakeTargets(const Case& k, uint64_t seed) {
  int64_t v = k.logits.back();
  auto t = RandomInts(Rows(k), seed, 0, v);
  for (int64_t r : k.ignored_rows) t[r] = k.ignore_index;
  // A custom ignore_index that is a valid class: keep other rows off it so "ignored" is explicit.
  for (size_t r = 0; r < t.size(); ++r)
    if (t[r] == k.ignore_index && std::find(k.ignored_rows.begin(), k.ignored_rows.end(), r) == k.ignored_rows.end())
      t[r] = (k.ignore_index + 1) % v;
  return t;
}

struct Reference {
  double loss = 0;
  std::vector<double> lse;
  std::vector<double> dlogits;  // for a given dloss
};

// Double-precision reference: lse_r = log sum exp x_r (shifted by the row max), loss = mean over
// counted rows of lse_r - x_r[t_r], dlogits = (softmax - onehot) * dloss / count.
Reference Ref(const std::vector<float>& x, const std::vector<int64_t>& t, int64_t v, int64_t ignore, double dloss) {
  Reference ref;
  int64_t rows = static_cast<int64_t>(t.size());
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r) count += t[r] != ignore;
  double sum = 0;
  ref.dlogits.assign(x.size(), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    double m = -INFINITY;
    for (int64_t j = 0; j < v; ++j) m = std::max(m, static_cast<double>(x[r * v + j]));
    double s = 0;
    for (int64_t j = 0; j < v; ++j) s += std::exp(x[r * v + j] - m);
    double lse = m + std::log(s);
    ref.lse.push_back(lse);
    if (t[r] == ignore) continue;
    sum += std::log(s) + (m - x[r * v + t[r]]);
    for (int64_t j = 0; j < v; ++j)
      ref.dlogits[r * v + j] = (std::exp(x[r * v + j] - lse) - (j == t[r] ? 1.0 : 0.0)) * dloss / count;
  }
  ref.loss = count ? sum / count : 0.0;
  return ref;
}

// Runs cross_entropy (and, with `backward`, its autodiff gradient scaled by dloss via a seed
// input) and compares to the reference. Tolerances are |got - ref| <= tol * (1 + |ref|).
void CheckCase(const Case& k, DType dtype, DType tdtype, float scale, double loss_tol, double grad_tol,
               uint64_t seed = 51) {
  int64_t v = k.logits.back();
  auto g = std::make_unique<ir::Graph>("ce");
  ir::Builder b(g.get());
  auto* logits = b.Param("logits", dtype, Shape(k.logits));
  auto* targets = b.Input("targets", tdtype, TargetShape(k));
  auto* loss = ir::ops::CrossEntropy(b, logits, targets, k.ignore_index, "loss");
  ASSERT_EQ(loss->dtype, DType::kF32);
  ASSERT_EQ(loss->shape, Shape{});
  ir::Value* lse = loss->producer->outputs[1];
  ASSERT_EQ(lse->name, "loss.lse");
  ASSERT_EQ(lse->dtype, DType::kF32);
  ASSERT_EQ(lse->shape, TargetShape(k));
  auto* seed_in = b.Input("dloss", DType::kF32, Shape{});
  g->outputs() = {loss, lse};
  ir::AutodiffOptions ao;
  ao.seed = seed_in;
  ASSERT_TRUE(ir::AppendBackward(*g, loss, {logits}, ao).ok());
  GraphRunner r(std::move(g));
  auto xv = testing::RoundTo(dtype, RandomUniform(Shape(k.logits).numel(), seed, -scale, scale));
  auto tv = MakeTargets(k, seed + 1);
  const double dloss = 1.75;
  r.Set("logits", xv);
  r.SetInts("targets", tv);
  r.Set("dloss", {static_cast<float>(dloss)});
  r.Run();
  Reference ref = Ref(xv, tv, v, k.ignore_index, dloss);
  float got_loss = r.Get("loss")[0];
  EXPECT_TRUE(std::isfinite(got_loss));
  if (k.ignored_rows.size() == tv.size()) {
    EXPECT_EQ(got_loss, 0.0f) << "every target ignored";
  }
  EXPECT_NEAR(got_loss, ref.loss, loss_tol * (1 + std::fabs(ref.loss)));
  auto got_lse = r.Get("loss.lse");
  ASSERT_EQ(got_lse.size(), ref.lse.size());
  for (size_t i = 0; i < ref.lse.size(); ++i) {
    EXPECT_TRUE(std::isfinite(got_lse[i])) << i;
    EXPECT_NEAR(got_lse[i], ref.lse[i], loss_tol * (1 + std::fabs(ref.lse[i]))) << "lse " << i;
  }
  auto got_d = r.Get(r.graph().GradOf(r.value("logits")));
  ASSERT_EQ(got_d.size(), ref.dlogits.size());
  for (size_t i = 0; i < ref.dlogits.size(); ++i) {
    EXPECT_TRUE(std::isfinite(got_d[i])) << i;
    EXPECT_NEAR(got_d[i], ref.dlogits[i], grad_tol * (1e-3 + std::fabs(ref.dlogits[i]))) << "dlogits " << i;
  }
  // Ignored rows: exactly zero gradient.
  for (size_t row = 0; row < tv.size(); ++row) {
    if (tv[row] != k.ignore_index) continue;
    for (int64_t j = 0; j < v; ++j) EXPECT_EQ(got_d[row * v + j], 0.0f) << "row " << row;
  }
}

class CrossEntropyCase : public ::testing::TestWithParam<Case> {};

// f32: the kernel exps in f32 and sums in double; 1e-5 relative covers f32 rounding of exp/log.
TEST_P(CrossEntropyCase, F32) { CheckCase(GetParam(), DType::kF32, DType::kI64, 3.0f, 1e-5, 1e-4); }
TEST_P(CrossEntropyCase, F32I32Targets) { CheckCase(GetParam(), DType::kF32, DType::kI32, 3.0f, 1e-5, 1e-4); }
// bf16/f16 logits: the reference uses the same rounded logits, so loss/lse stay at f32 accuracy;
// dlogits is stored in the logits' dtype: one rounding, 2^-8 (bf16) / 2^-11 (f16) relative.
TEST_P(CrossEntropyCase, Bf16) { CheckCase(GetParam(), DType::kBF16, DType::kI32, 3.0f, 1e-5, 8e-3); }
TEST_P(CrossEntropyCase, F16) { CheckCase(GetParam(), DType::kF16, DType::kI64, 3.0f, 1e-5, 1e-3); }
// 1e4-scale logits: everything stays finite. lse is stored in f32 (ulp 1e-3 at 1e4), so lse is
// within 1e-6 relative; the loss avoids cancellation (log s + (max - x[t]) in double); dlogits uses
// exp(x - lse_f32), off by up to ~|lse| * 2^-24 ~ 1e-3 absolute in the exponent: 2e-3 relative.
TEST_P(CrossEntropyCase, LargeLogits) { CheckCase(GetParam(), DType::kF32, DType::kI64, 1e4f, 1e-5, 2e-3); }
TEST_P(CrossEntropyCase, LargeLogitsBf16) { CheckCase(GetParam(), DType::kBF16, DType::kI64, 1e4f, 1e-5, 1e-2); }

TEST_P(CrossEntropyCase, GradCheckLogits) {
  const Case k = GetParam();
  auto tv = MakeTargets(k, 77);
  std::vector<testing::GradInput> in = {{"logits", Shape(k.logits)}};
  testing::GradInput t{"targets", TargetShape(k), DType::kI64, false};
  t.values.assign(tv.begin(), tv.end());
  in.push_back(t);
  in[0].lo = -2.0f;
  in[0].hi = 2.0f;
  testing::GradCheckOptions o;
  o.step = 1e-2;
  GradCheck(in, [k](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return std::vector<ir::Value*>{ir::ops::CrossEntropy(b, v[0], v[1], k.ignore_index)};
  }, o);
}

INSTANTIATE_TEST_SUITE_P(All, CrossEntropyCase, ::testing::ValuesIn(kCases), CaseName);

TEST(CrossEntropy, AllIgnoredIsZero) {
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    Case k{{3, 5}, kIgnore, {0, 1, 2}};
    CheckCase(k, dtype, DType::kI32, 3.0f, 1e-5, 1e-4);  // checks loss == 0 and zero rows exactly
  }
}

// V = 1: the only class has probability 1, so the loss and the gradient are exactly 0.
TEST(CrossEntropy, SingleClassIsZero) {
  auto g = std::make_unique<ir::Graph>("ce1");
  ir::Builder b(g.get());
  auto* logits = b.Param("logits", DType::kF32, Shape{6, 1});
  auto* targets = b.Input("targets", DType::kI32, Shape{6});
  auto* loss = ir::ops::CrossEntropy(b, logits, targets, kIgnore, "loss");
  g->outputs() = {loss};
  ASSERT_TRUE(ir::AppendBackward(*g, loss, {logits}).ok());
  GraphRunner r(std::move(g));
  r.Set("logits", {-3, 0, 2.5, 100, -1e4, 7});
  r.SetInts("targets", {0, 0, kIgnore, 0, 0, 0});
  r.Run();
  EXPECT_EQ(r.Get("loss")[0], 0.0f);
  for (float d : r.Get(r.graph().GradOf(r.value("logits")))) EXPECT_EQ(d, 0.0f);
  EXPECT_EQ(r.Get("loss.lse"), (std::vector<float>{-3, 0, 2.5, 100, -1e4, 7}));
}

// A gradient reaching lse is ignored: d/dlogits of (loss + <lse, w>) equals that of the loss.
TEST(CrossEntropy, LseGradientIgnored) {
  std::vector<std::vector<float>> grads;
  for (bool use_lse : {false, true}) {
    auto g = std::make_unique<ir::Graph>("ce_lse");
    ir::Builder b(g.get());
    auto* logits = b.Param("logits", DType::kF32, Shape{3, 4});
    auto* targets = b.Input("targets", DType::kI64, Shape{3});
    auto* loss = ir::ops::CrossEntropy(b, logits, targets, kIgnore, "ce");
    ir::Value* total = loss;
    if (use_lse) {
      auto* w = b.Input("w", DType::kF32, Shape{3});
      ir::Value* lse = loss->producer->outputs[1];
      total = ir::ops::Add(b, loss, ir::ops::ReduceSumTo(b, ir::ops::Mul(b, lse, w), Shape{}), "total");
    }
    g->outputs() = {total};
    ASSERT_TRUE(ir::AppendBackward(*g, total, {logits}).ok());
    GraphRunner r(std::move(g));
    r.Set("logits", RandomUniform(12, 3));
    r.SetInts("targets", {1, kIgnore, 3});
    if (use_lse) r.Set("w", {1, 2, 3});
    r.Run();
    grads.push_back(r.Get(r.graph().GradOf(r.value("logits"))));
  }
  EXPECT_EQ(grads[0], grads[1]);
}

TEST(CrossEntropy, RejectsBadInputs) {
  ir::Graph g("bad");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kF32, Shape{2, 3, 5});
  auto* ix = b.Input("ix", DType::kI32, Shape{2, 3, 5});
  auto* x0 = b.Input("x0", DType::kF32, Shape{});
  auto* xv0 = b.Input("xv0", DType::kF32, Shape{2, 3, 0});
  auto* t = b.Input("t", DType::kI64, Shape{2, 3});
  auto* t_full = b.Input("t_full", DType::kI64, Shape{2, 3, 5});
  auto* t_swapped = b.Input("t_swapped", DType::kI64, Shape{3, 2});
  auto* t_short = b.Input("t_short", DType::kI64, Shape{2});
  auto* tf = b.Input("tf", DType::kF32, Shape{2, 3});
  auto* t8 = b.Input("t8", DType::kU8, Shape{2, 3});
  auto expect_error = [&](std::string_view op, std::vector<ir::Value*> in, const std::string& word) {
    auto r = b.TryEmit(op, std::move(in));
    ASSERT_FALSE(r.ok()) << word;
    EXPECT_NE(r.status().message().find(word), std::string::npos) << r.status().message();
  };
  expect_error("cross_entropy", {x, t_full}, "(targets)");
  expect_error("cross_entropy", {x, t_swapped}, "(targets)");
  expect_error("cross_entropy", {x, t_short}, "(targets)");
  expect_error("cross_entropy", {x, tf}, "(targets)");
  expect_error("cross_entropy", {x, t8}, "(targets)");
  expect_error("cross_entropy", {ix, t}, "(logits)");
  expect_error("cross_entropy", {x0, t}, "(logits)");
  expect_error("cross_entropy", {xv0, t}, "(logits)");
  auto ok = b.TryEmit("cross_entropy", {x, t});
  ASSERT_TRUE(ok.ok());
  ir::Value* lse = (*ok)[1];
  auto* dl = b.Input("dl", DType::kF32, Shape{});
  auto* dl_vec = b.Input("dl_vec", DType::kF32, Shape{1});
  auto* dl_bf = b.Input("dl_bf", DType::kBF16, Shape{});
  auto* lse_bad = b.Input("lse_bad", DType::kF32, Shape{2, 3, 1});
  auto* lse_bf = b.Input("lse_bf", DType::kBF16, Shape{2, 3});
  expect_error("cross_entropy_bwd", {dl_vec, x, t, lse}, "(dloss)");
  expect_error("cross_entropy_bwd", {dl_bf, x, t, lse}, "(dloss)");
  expect_error("cross_entropy_bwd", {dl, x, t_full, lse}, "(targets)");
  expect_error("cross_entropy_bwd", {dl, x, t, lse_bad}, "(lse)");
  expect_error("cross_entropy_bwd", {dl, x, t, lse_bf}, "(lse)");
  EXPECT_TRUE(b.TryEmit("cross_entropy_bwd", {dl, x, t, lse}).ok());
}

TEST(CrossEntropy, Cost) {
  ir::Graph g("cost");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kBF16, Shape{2, 3, 10});
  auto* t = b.Input("t", DType::kI32, Shape{2, 3});
  auto* loss = ir::ops::CrossEntropy(b, x, t);
  EXPECT_EQ(loss->producer->attrs.GetInt("ignore_index"), -100);  // the default
  ir::Cost c = ir::NodeCost(*loss->producer);
  EXPECT_DOUBLE_EQ(c.flops, 4 * 60.0);
  EXPECT_DOUBLE_EQ(c.bytes_read, 60 * 2.0 + 6 * 4.0);
  EXPECT_DOUBLE_EQ(c.bytes_written, 4.0 + 6 * 4.0);
  EXPECT_EQ(ir::NodeWorkspace(*loss->producer), 256u);  // 6 doubles, aligned
  auto* dl = b.Input("dl", DType::kF32, Shape{});
  auto* dx = ir::ops::CrossEntropyBwd(b, dl, x, t, loss->producer->outputs[1]);
  EXPECT_EQ(dx->dtype, DType::kBF16);
  EXPECT_EQ(dx->shape, x->shape);
  ir::Cost cb = ir::NodeCost(*dx->producer);
  EXPECT_DOUBLE_EQ(cb.flops, 4 * 60.0);
  EXPECT_DOUBLE_EQ(cb.bytes_read, 4.0 + 60 * 2.0 + 6 * 4.0 + 6 * 4.0);
  EXPECT_DOUBLE_EQ(cb.bytes_written, 60 * 2.0);
  EXPECT_EQ(ir::NodeWorkspace(*dx->producer), 0u);
}

// Loss, lse and dlogits do not depend on the thread count (row terms summed in row order in
// double; rows independent), and match the reference when rows are really split over threads.
TEST(CrossEntropy, IndependentOfThreadCount) {
  const int64_t rows = 3000, v = 29;
  auto xv = RandomUniform(rows * v, 61, -5, 5);
  auto ti = RandomInts(rows, 62, 0, v);
  for (int64_t r = 0; r < rows; r += 7) ti[r] = kIgnore;
  std::vector<double> ws(ir::CrossEntropyWorkspaceBytes(rows) / 8);
  std::vector<std::vector<float>> lses, dxs;
  std::vector<float> losses;
  int saved = omp_get_max_threads();
  for (int threads : {1, 2, 5}) {
    omp_set_num_threads(threads);
    float loss = -1, dloss = 0.5f;
    std::vector<float> lse(rows), dx(rows * v);
    Tensor tx(xv.data(), DType::kF32, Shape{rows, v});
    Tensor tt(ti.data(), DType::kI64, Shape{rows});
    Tensor tlse(lse.data(), DType::kF32, Shape{rows});
    cross_entropy_fwd(tx, tt, kIgnore, 0, Tensor(&loss, DType::kF32, Shape{}), tlse,
                      Tensor(ws.data(), DType::kU8, Shape{static_cast<int64_t>(ws.size() * 8)}));
    cross_entropy_bwd(Tensor(&dloss, DType::kF32, Shape{}), tx, tt, tlse, kIgnore, 0,
                      Tensor(dx.data(), DType::kF32, Shape{rows, v}));
    losses.push_back(loss);
    lses.push_back(lse);
    dxs.push_back(dx);
  }
  omp_set_num_threads(saved);
  for (size_t i = 1; i < losses.size(); ++i) {
    EXPECT_EQ(losses[0], losses[i]);
    EXPECT_EQ(lses[0], lses[i]);
    EXPECT_EQ(dxs[0], dxs[i]);
  }
  Reference ref = Ref(xv, ti, v, kIgnore, 0.5);
  EXPECT_NEAR(losses.back(), ref.loss, 1e-5 * (1 + ref.loss));
  for (int64_t r = 0; r < rows; ++r) ASSERT_NEAR(lses.back()[r], ref.lse[r], 1e-5 * (1 + std::fabs(ref.lse[r]))) << r;
  for (size_t i = 0; i < ref.dlogits.size(); ++i)
    ASSERT_NEAR(dxs.back()[i], ref.dlogits[i], 1e-4 * (1e-3 + std::fabs(ref.dlogits[i]))) << i;
}

// ---- classes < V: a padded vocabulary ----

struct PadResult {
  float loss;
  std::vector<float> lse, dlogits;
  int64_t bwd_classes = -1;  // the `classes` attribute of the emitted cross_entropy_bwd node
};

// cross_entropy (classes) of logits [rows, v] and its gradient through autodiff, for dloss 1.75.
PadResult RunPadded(DType dtype, int64_t rows, int64_t v, int64_t classes, const std::vector<float>& x,
                    const std::vector<int64_t>& t) {
  auto g = std::make_unique<ir::Graph>("ce_pad");
  ir::Builder b(g.get());
  auto* logits = b.Param("logits", dtype, Shape{rows, v});
  auto* targets = b.Input("targets", DType::kI32, Shape{rows});
  auto* loss = ir::ops::CrossEntropy(b, logits, targets, kIgnore, "loss", classes);
  auto* seed_in = b.Input("dloss", DType::kF32, Shape{});
  g->outputs() = {loss, loss->producer->outputs[1]};
  ir::AutodiffOptions ao;
  ao.seed = seed_in;
  ZT_CHECK_OK(ir::AppendBackward(*g, loss, {logits}, ao));
  GraphRunner r(std::move(g));
  r.Set("logits", x);
  r.SetInts("targets", t);
  r.Set("dloss", {1.75f});
  r.Run();
  PadResult out;
  out.loss = r.Get("loss")[0];
  out.lse = r.Get("loss.lse");
  const ir::Value* grad = r.graph().GradOf(r.value("logits"));
  out.dlogits = r.Get(grad);
  if (grad->producer != nullptr && grad->producer->op->name == "cross_entropy_bwd")
    out.bwd_classes = grad->producer->attrs.GetInt("classes");
  return out;
}

// Padded logits [rows, vp] whose first v columns are an unpadded [rows, v] and whose padding holds
// large finite garbage (1e4 and friends: an implementation that reads it gets an lse near 1e4 and
// inf gradients) give the unpadded results exactly, and exact zeros in the padding's gradient.
TEST(CrossEntropyClasses, PaddingColumnsAreIgnored) {
  struct Shape3 {
    int64_t rows, v, vp;
  };
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (Shape3 k : {Shape3{5, 37, 64}, Shape3{3, 50, 128}, Shape3{4, 1, 8}, Shape3{6, 300, 301}, Shape3{2, 7, 7}}) {
      SCOPED_TRACE(std::string(DTypeName(dtype)) + " rows " + std::to_string(k.rows) + " V " + std::to_string(k.v) +
                   " padded to " + std::to_string(k.vp));
      auto xv = testing::RoundTo(dtype, RandomUniform(k.rows * k.v, 91 + k.v, -3, 3));
      std::vector<float> xp(k.rows * k.vp);
      const float garbage[] = {1e4f, -1e4f, 5e3f, 0.0f, 2.5e3f};
      for (int64_t r = 0; r < k.rows; ++r)
        for (int64_t j = 0; j < k.vp; ++j)
          xp[r * k.vp + j] = j < k.v ? xv[r * k.v + j] : garbage[(r + j) % 5];
      auto tv = RandomInts(k.rows, 92, 0, k.v);
      tv[1] = kIgnore;
      tv[0] = k.v - 1;  // the last valid class, next to the padding
      PadResult ref = RunPadded(dtype, k.rows, k.v, 0, xv, tv);
      PadResult got = RunPadded(dtype, k.rows, k.vp, k.v, xp, tv);
      EXPECT_EQ(got.bwd_classes, k.v) << "the backward rule must pass `classes` on";
      EXPECT_TRUE(std::isfinite(got.loss));
      EXPECT_EQ(got.loss, ref.loss);
      EXPECT_EQ(got.lse, ref.lse);
      ASSERT_EQ(got.dlogits.size(), xp.size());
      for (int64_t r = 0; r < k.rows; ++r) {
        for (int64_t j = 0; j < k.vp; ++j) {
          const float d = got.dlogits[r * k.vp + j];
          if (j < k.v) {
            ASSERT_EQ(d, ref.dlogits[r * k.v + j]) << "row " << r << " col " << j;
          } else {
            ASSERT_EQ(d, 0.0f) << "padding: row " << r << " col " << j;
          }
        }
      }
      // The unpadded results are right in the first place (a loose check against the reference).
      Reference dref = Ref(xv, tv, k.v, kIgnore, 1.75);
      EXPECT_NEAR(got.loss, dref.loss, 1e-5 * (1 + std::fabs(dref.loss)));
    }
  }
}

// classes = V is the same node as classes = 0 (every column a class).
TEST(CrossEntropyClasses, EqualToVIsEverything) {
  auto xv = RandomUniform(4 * 9, 93, -3, 3);
  auto tv = RandomInts(4, 94, 0, 9);
  PadResult all = RunPadded(DType::kF32, 4, 9, 0, xv, tv);
  PadResult nine = RunPadded(DType::kF32, 4, 9, 9, xv, tv);
  EXPECT_EQ(all.loss, nine.loss);
  EXPECT_EQ(all.lse, nine.lse);
  EXPECT_EQ(all.dlogits, nine.dlogits);
}

// Finite differences over every element, padding included (whose true gradient is 0).
TEST(CrossEntropyClasses, GradCheck) {
  std::vector<testing::GradInput> in = {{"logits", Shape{3, 10}}};
  in[0].lo = -2.0f;
  in[0].hi = 2.0f;
  testing::GradInput t{"targets", Shape{3}, DType::kI64, false};
  t.values = {6, 0, 3};
  in.push_back(t);
  GradCheck(in, [](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return std::vector<ir::Value*>{ir::ops::CrossEntropy(b, v[0], v[1], kIgnore, "", 7)};
  });
}

TEST(CrossEntropyClasses, AttributeRangeIsVerified) {
  ir::Graph g("bad_classes");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kF32, Shape{2, 3, 5});
  auto* t = b.Input("t", DType::kI64, Shape{2, 3});
  for (int64_t bad : {int64_t{-1}, int64_t{6}, int64_t{1000}}) {
    auto r = b.TryEmit("cross_entropy", {x, t}, {{"classes", bad}});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("attribute 'classes' = " + std::to_string(bad) + " must be in [0, 5]"),
              std::string::npos)
        << r.status().message();
  }
  auto ok = b.TryEmit("cross_entropy", {x, t}, {{"classes", int64_t{5}}});
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(b.TryEmit("cross_entropy", {x, t}, {{"classes", int64_t{1}}}).ok());
  auto* dl = b.Input("dl", DType::kF32, Shape{});
  ir::Value* lse = (*ok)[1];
  auto bad = b.TryEmit("cross_entropy_bwd", {dl, x, t, lse}, {{"classes", int64_t{6}}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("attribute 'classes' = 6"), std::string::npos) << bad.status().message();
  EXPECT_TRUE(b.TryEmit("cross_entropy_bwd", {dl, x, t, lse}, {{"classes", int64_t{4}}}).ok());
}

// Flops count the valid logits only; the forward never reads the padding.
TEST(CrossEntropyClasses, Cost) {
  ir::Graph g("cost");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kBF16, Shape{2, 3, 16});
  auto* t = b.Input("t", DType::kI32, Shape{2, 3});
  auto* loss = ir::ops::CrossEntropy(b, x, t, kIgnore, "loss", 10);
  ir::Cost c = ir::NodeCost(*loss->producer);
  EXPECT_DOUBLE_EQ(c.flops, 4 * 60.0);
  EXPECT_DOUBLE_EQ(c.bytes_read, 60 * 2.0 + 6 * 4.0);
  EXPECT_DOUBLE_EQ(c.bytes_written, 4.0 + 6 * 4.0);
  auto* dl = b.Input("dl", DType::kF32, Shape{});
  auto* dx = ir::ops::CrossEntropyBwd(b, dl, x, t, loss->producer->outputs[1], kIgnore, "dx", 10);
  ir::Cost cb = ir::NodeCost(*dx->producer);
  EXPECT_DOUBLE_EQ(cb.flops, 4 * 60.0);
  EXPECT_DOUBLE_EQ(cb.bytes_written, 96 * 2.0);  // the whole dlogits, zeros included
}

// The text form carries the attribute: print -> parse -> print is stable and keeps classes.
TEST(CrossEntropyClasses, TextRoundTrip) {
  auto g = std::make_unique<ir::Graph>("ce_text");
  ir::Builder b(g.get());
  auto* x = b.Param("x", DType::kF32, Shape{4, 16});
  auto* t = b.Input("t", DType::kI32, Shape{4});
  auto* loss = ir::ops::CrossEntropy(b, x, t, kIgnore, "loss", 11);
  ASSERT_TRUE(ir::AppendBackward(*g, loss, {x}).ok());
  std::string text = ir::PrintGraph(*g);
  EXPECT_NE(text.find("cross_entropy(%x, %t) {classes=11, ignore_index=-100}"), std::string::npos) << text;
  EXPECT_NE(text.find("{classes=11, ignore_index=-100}", text.find("cross_entropy_bwd(")), std::string::npos)
      << text;
  auto parsed = ir::ParseGraph(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(ir::PrintGraph(**parsed), text);
  int found = 0;
  for (const auto& n : (*parsed)->nodes()) {
    if (n->op->name == "cross_entropy" || n->op->name == "cross_entropy_bwd") {
      EXPECT_EQ(n->attrs.GetInt("classes"), 11) << n->op->name;
      ++found;
    }
  }
  EXPECT_EQ(found, 2);
}

class CrossEntropyDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(CrossEntropyDeathTest, TargetOutOfRange) {
  std::vector<float> x(3 * 4, 0.5f), lse(3), dx(3 * 4);
  std::vector<int32_t> t = {1, 4, kIgnore};
  std::vector<double> ws(32);
  float loss = 0, dloss = 1;
  Tensor tx(x.data(), DType::kF32, Shape{3, 4});
  Tensor tt(t.data(), DType::kI32, Shape{3});
  Tensor tl(&loss, DType::kF32, Shape{});
  Tensor tlse(lse.data(), DType::kF32, Shape{3});
  Tensor tws(ws.data(), DType::kU8, Shape{256});
  EXPECT_DEATH(cross_entropy_fwd(tx, tt, kIgnore, 0, tl, tlse, tws),
               "target 4 at row 1 is outside \\[0, V = 4\\) and is not ignore_index \\(-100\\)");
  EXPECT_DEATH(cross_entropy_bwd(Tensor(&dloss, DType::kF32, Shape{}), tx, tt, tlse, kIgnore, 0,
                                 Tensor(dx.data(), DType::kF32, Shape{3, 4})),
               "target 4 at row 1 is outside");
  t[1] = -1;  // negative and not the ignore_index
  EXPECT_DEATH(cross_entropy_fwd(tx, tt, kIgnore, 0, tl, tlse, tws), "target -1 at row 1 is outside");
  t[1] = 3;
  cross_entropy_fwd(tx, tt, kIgnore, 0, tl, tlse, tws);
  EXPECT_NEAR(loss, std::log(4.0), 1e-6);
  // With classes = 3, column 3 is padding: a target there is out of range in both directions.
  EXPECT_DEATH(cross_entropy_fwd(tx, tt, kIgnore, 3, tl, tlse, tws),
               "target 3 at row 1 is outside \\[0, classes = 3\\) \\(the logits have V = 4 columns\\)");
  EXPECT_DEATH(cross_entropy_bwd(Tensor(&dloss, DType::kF32, Shape{}), tx, tt, tlse, kIgnore, 3,
                                 Tensor(dx.data(), DType::kF32, Shape{3, 4})),
               "target 3 at row 1 is outside \\[0, classes = 3\\)");
  t[1] = 2;
  cross_entropy_fwd(tx, tt, kIgnore, 3, tl, tlse, tws);
  EXPECT_NEAR(loss, std::log(3.0), 1e-6);
}

TEST_F(CrossEntropyDeathTest, GraphTargetOutOfRange) {
  auto g = std::make_unique<ir::Graph>("ce");
  ir::Builder b(g.get());
  auto* x = b.Input("x", DType::kF32, Shape{2, 5});
  auto* t = b.Input("t", DType::kI64, Shape{2});
  g->outputs() = {ir::ops::CrossEntropy(b, x, t, kIgnore, "loss")};
  GraphRunner r(std::move(g));
  r.Set("x", RandomUniform(10, 4));
  r.SetInts("t", {0, 5});
  EXPECT_DEATH(r.Run(), "target 5 at row 1 is outside \\[0, V = 5\\)");
}

}  // namespace
}  // namespace zt
