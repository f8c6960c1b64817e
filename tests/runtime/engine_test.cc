// Engine: gradient accumulation equivalence, determinism, fp16 overflow handling (skip, back off,
// no schedule advance), bf16/fp16 master weights, the learning-rate schedule applied per update.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "backend/cpu/cpu_backend.h"
#include "models/gpt2.h"
#include "models/init.h"
#include "runtime/engine.h"
#include "runtime/lr_schedule.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

constexpr int64_t kVocab = 40, kSeq = 8;

models::Gpt2Config TinyConfig() {
  models::Gpt2Config c;
  c.vocab_size = kVocab;
  c.n_positions = kSeq;
  c.n_embd = 16;
  c.n_layer = 2;
  c.n_head = 2;
  return c;
}

DType ParamDType(config::Precision p) {
  return p == config::Precision::kBF16 ? DType::kBF16 : p == config::Precision::kF16 ? DType::kF16 : DType::kF32;
}

// A training run on fixed pseudo-random data: global step s uses sequences [s*G, (s+1)*G) of a
// deterministic stream, split into micro-batches of `micro` sequences.
struct TrainRun {
  CpuBackend backend;
  std::unique_ptr<Engine> engine;
  int64_t micro;

  TrainRun(const EngineOptions& o, int64_t micro_batch) : micro(micro_batch) {
    auto g = std::make_unique<ir::Graph>("gpt2");
    ir::Builder b(g.get());
    auto m = models::BuildGpt2(b, TinyConfig(), {.batch = micro, .seq = kSeq, .dtype = ParamDType(o.precision)});
    ZT_CHECK(m.ok());
    auto e = Engine::Create(std::move(g), {m->tokens, m->targets, m->loss}, o, backend);
    ZT_CHECK(e.ok()) << e.status().ToString();
    engine = std::move(*e);
    ZT_CHECK_OK(engine->InitParams([](const std::string& name, const Tensor& host) {
      models::InitParam(name, host, {.std = 0.1, .n_layer = 2, .seed = 3});
    }));
  }

  StepStats Step(int64_t global_step, int64_t global_batch) {
    auto st = engine->TrainStep([&](int m, std::vector<int32_t>& tok, std::vector<int32_t>& tgt) {
      int64_t first = global_step * global_batch + m * micro;  // first sequence of this micro-batch
      tok.resize(static_cast<size_t>(micro * kSeq));
      tgt.resize(tok.size());
      for (int64_t i = 0; i < micro; ++i) {
        auto ids = testing::RandomInts(kSeq + 1, 1000 + first + i, 0, kVocab);
        for (int64_t t = 0; t < kSeq; ++t) {
          tok[i * kSeq + t] = static_cast<int32_t>(ids[t]);
          tgt[i * kSeq + t] = static_cast<int32_t>(ids[t + 1]);
        }
      }
    });
    ZT_CHECK(st.ok()) << st.status().ToString();
    return *st;
  }

  std::vector<float> Params() {
    std::vector<float> all;
    ZT_CHECK_OK(engine->ReadParams([&](const std::string&, const Tensor& t) {
      all.insert(all.end(), t.as<float>(), t.as<float>() + t.numel());
    }));
    return all;
  }
};

EngineOptions BaseOptions() {
  EngineOptions o;
  o.optimizer.lr = 3e-3;
  o.optimizer.weight_decay = 0.01;
  o.gradient_clipping = 1.0;
  return o;
}

// k micro-batches of b give the losses and parameters of one batch of k*b. The two differ only in
// f32 summation order (per-micro means averaged vs one mean; gradient sums split in k parts):
// losses and gradient norms agree to ~1e-6 relative. Parameters: Adam divides each update by
// sqrt(v), so for elements whose gradients are near zero a summation-order difference becomes a
// visible fraction of that element's update; over 6 steps of lr 3e-3 (total movement ~1.8e-2)
// they stay within 1e-4 absolute, under 1% of how far the parameters moved.
TEST(Engine, GradientAccumulationMatchesOneBigBatch) {
  constexpr int64_t kSteps = 6, kMicro = 2, kAccum = 3;
  EngineOptions one = BaseOptions();
  EngineOptions acc = BaseOptions();
  acc.grad_accum = kAccum;
  TrainRun big(one, kMicro * kAccum), split(acc, kMicro);
  for (int64_t s = 0; s < kSteps; ++s) {
    StepStats a = big.Step(s, kMicro * kAccum), b = split.Step(s, kMicro * kAccum);
    EXPECT_NEAR(a.loss, b.loss, 1e-5 * std::fabs(a.loss)) << "step " << s;
    EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-4 * a.grad_norm) << "step " << s;
  }
  auto pa = big.Params(), pb = split.Params();
  ASSERT_EQ(pa.size(), pb.size());
  double worst = 0;
  for (size_t i = 0; i < pa.size(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(pa[i] - pb[i])));
  EXPECT_LT(worst, 1e-4);
  // And the step did change the parameters by far more than that.
  TrainRun fresh(one, kMicro * kAccum);
  auto p0 = fresh.Params();
  double moved = 0;
  for (size_t i = 0; i < pa.size(); ++i) moved = std::max(moved, static_cast<double>(std::fabs(pa[i] - p0[i])));
  EXPECT_GT(moved, 1e-3);
  EXPECT_LT(worst, 0.01 * moved);
}

TEST(Engine, SameSeedIsBitIdentical) {
  for (auto prec : {config::Precision::kF32, config::Precision::kBF16}) {
    EngineOptions o = BaseOptions();
    o.precision = prec;
    o.grad_accum = 2;
    TrainRun a(o, 2), b(o, 2);
    for (int64_t s = 0; s < 4; ++s) {
      StepStats x = a.Step(s, 4), y = b.Step(s, 4);
      EXPECT_EQ(std::memcmp(&x.loss, &y.loss, sizeof(double)), 0) << "step " << s;
      EXPECT_EQ(std::memcmp(&x.grad_norm, &y.grad_norm, sizeof(double)), 0) << "step " << s;
    }
    EXPECT_TRUE(a.Params() == b.Params());
  }
}

// An injected overflow (loss seed +inf, so every gradient is inf/nan exactly as in a real fp16
// overflow) skips the update: parameters and moments keep their bytes, the schedule does not
// advance, and with hysteresis 1 the scale halves (DeepSpeed: "skip the step and reduce the
// scale"). With the default hysteresis 2 the first overflow keeps the scale, the second halves it.
TEST(Engine, Fp16OverflowSkipsTheStepAndBacksOff) {
  EngineOptions o = BaseOptions();
  o.precision = config::Precision::kF16;
  o.fp16.initial_scale_power = 10;
  o.fp16.hysteresis = 1;
  o.scheduler.type = "WarmupLR";
  o.scheduler.warmup_min_lr = 0;
  o.scheduler.warmup_max_lr = 3e-3;
  o.scheduler.warmup_num_steps = 10;
  o.scheduler.warmup_type = "linear";
  o.inject_overflow_steps = {3};
  TrainRun r(o, 2);
  StepStats s1 = r.Step(0, 2), s2 = r.Step(1, 2);
  EXPECT_FALSE(s1.skipped);
  EXPECT_FALSE(s2.skipped);
  EXPECT_EQ(s2.loss_scale, 1024.0);
  auto before = r.Params();
  double lr_before = r.engine->CurrentLearningRate();
  StepStats s3 = r.Step(2, 2);
  EXPECT_TRUE(s3.skipped);
  EXPECT_FALSE(std::isfinite(s3.grad_norm));
  EXPECT_EQ(s3.loss_scale, 1024.0);            // the scale this step used
  EXPECT_TRUE(r.Params() == before);           // bit-identical: nothing was applied
  EXPECT_EQ(r.engine->CurrentLearningRate(), lr_before);
  EXPECT_EQ(r.engine->state().applied_updates, 2);
  EXPECT_EQ(r.engine->state().global_step, 3);
  StepStats s4 = r.Step(3, 2);
  EXPECT_FALSE(s4.skipped);
  EXPECT_EQ(s4.loss_scale, 512.0);             // halved after the overflow
  EXPECT_NEAR(s4.lr, LearningRate(o.scheduler, o.optimizer.lr, 2), 1e-12);  // third applied update
  EXPECT_FALSE(r.Params() == before);

  EngineOptions h2 = o;
  h2.fp16.hysteresis = 2;
  h2.inject_overflow_steps = {2, 3};
  TrainRun q(h2, 2);
  EXPECT_FALSE(q.Step(0, 2).skipped);
  StepStats o2 = q.Step(1, 2);  // global step 2: first overflow, absorbed by the hysteresis
  EXPECT_TRUE(o2.skipped);
  EXPECT_EQ(q.engine->state().scaler.scale, 1024.0);
  StepStats o3 = q.Step(2, 2);  // global step 3: second overflow halves the scale
  EXPECT_TRUE(o3.skipped);
  EXPECT_EQ(o3.loss_scale, 1024.0);
  EXPECT_EQ(q.engine->state().scaler.scale, 512.0);
  EXPECT_EQ(q.Step(3, 2).loss_scale, 512.0);
}

TEST(Engine, LowPrecisionKeepsF32MasterWeights) {
  for (auto prec : {config::Precision::kBF16, config::Precision::kF16}) {
    EngineOptions o = BaseOptions();
    o.precision = prec;
    TrainRun r(o, 2);
    const ir::Graph& g = r.engine->program().graph();
    int masters = 0;
    for (const auto& v : g.values()) {
      if (v->kind != ir::ValueKind::kParam) continue;
      EXPECT_EQ(v->dtype, ParamDType(prec));
      const ir::Value* m = g.FindValue(ir::MasterName(v->name));
      ASSERT_NE(m, nullptr) << v->name;
      EXPECT_EQ(m->dtype, DType::kF32);
      EXPECT_EQ(m->category, MemCategory::kOptimizerState);
      ++masters;
    }
    EXPECT_GT(masters, 10);
    double first = r.Step(0, 2).loss;
    for (int s = 1; s < 30; ++s) r.Step(s % 3, 2);  // three batches, seen repeatedly
    EXPECT_LT(r.Step(0, 2).loss, first - 0.2) << config::PrecisionName(prec);
  }
}

TEST(Engine, FromConfigCarriesTheRunSettings) {
  config::RunConfig c;
  c.precision = config::Precision::kBF16;
  c.gradient_accumulation_steps = 4;
  c.gradient_clipping = 0.5;
  c.optimizer.lr = 0.1;
  c.scheduler.type = "WarmupCosineLR";
  c.wall_clock_breakdown = true;
  EngineOptions o = EngineOptions::FromConfig(c);
  EXPECT_EQ(o.precision, config::Precision::kBF16);
  EXPECT_EQ(o.grad_accum, 4);
  EXPECT_EQ(o.gradient_clipping, 0.5);
  EXPECT_EQ(o.optimizer.lr, 0.1);
  EXPECT_EQ(o.scheduler.type, "WarmupCosineLR");
  EXPECT_TRUE(o.wall_clock_breakdown);
}

TEST(Engine, WallClockBreakdownTimesEachPhase) {
  EngineOptions o = BaseOptions();
  o.wall_clock_breakdown = true;
  o.grad_accum = 2;
  TrainRun r(o, 2);
  StepStats s = r.Step(0, 4);
  EXPECT_GT(s.forward_seconds, 0);
  EXPECT_GT(s.backward_seconds, 0);
  EXPECT_GT(s.optimizer_seconds, 0);
  EXPECT_LE(s.forward_seconds + s.backward_seconds + s.optimizer_seconds, s.seconds * 1.01);
}

}  // namespace
}  // namespace zt
