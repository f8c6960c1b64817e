// Learning-rate schedules and the loss scaler against DeepSpeed's formulas, value by value.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/loss_scaler.h"
#include "runtime/lr_schedule.h"

namespace zt {
namespace {

TEST(LrSchedule, ConstantWithoutScheduler) {
  config::SchedulerOptions s;
  EXPECT_EQ(LearningRate(s, 0.01, 0), 0.01);
  EXPECT_EQ(LearningRate(s, 0.01, 12345), 0.01);
}

TEST(LrSchedule, WarmupLRLogAndLinear) {
  config::SchedulerOptions s;
  s.type = "WarmupLR";
  s.warmup_min_lr = 0.001;
  s.warmup_max_lr = 0.01;
  s.warmup_num_steps = 100;
  s.warmup_type = "log";
  EXPECT_DOUBLE_EQ(LearningRate(s, 0, 0), 0.001);  // log(1) = 0
  EXPECT_DOUBLE_EQ(LearningRate(s, 0, 9), 0.001 + 0.009 * std::log(10.0) / std::log(100.0));
  EXPECT_DOUBLE_EQ(LearningRate(s, 0, 100), 0.01);
  EXPECT_DOUBLE_EQ(LearningRate(s, 0, 5000), 0.01);
  s.warmup_type = "linear";
  EXPECT_DOUBLE_EQ(LearningRate(s, 0, 25), 0.001 + 0.009 * 0.25);
}

TEST(LrSchedule, WarmupDecayLRDecaysLinearlyToZero) {
  config::SchedulerOptions s;
  s.type = "WarmupDecayLR";
  s.warmup_min_lr = 0;
  s.warmup_max_lr = 0.01;
  s.warmup_num_steps = 10;
  s.warmup_type = "linear";
  s.total_num_steps = 110;
  EXPECT_DOUBLE_EQ(LearningRate(s, 0, 5), 0.005);
  EXPECT_DOUBLE_EQ(LearningRate(s, 0, 10), 0.01);
  EXPECT_DOUBLE_EQ(LearningRate(s, 0, 60), 0.005);
  EXPECT_DOUBLE_EQ(LearningRate(s, 0, 110), 0.0);
  EXPECT_DOUBLE_EQ(LearningRate(s, 0, 500), 0.0);
}

TEST(LrSchedule, WarmupCosineLR) {
  config::SchedulerOptions s;
  s.type = "WarmupCosineLR";
  s.warmup_num_steps = 10;
  s.warmup_type = "linear";
  s.warmup_min_ratio = 0.1;
  s.cos_min_ratio = 0.01;
  s.total_num_steps = 110;
  const double lr = 0.02;
  EXPECT_DOUBLE_EQ(LearningRate(s, lr, 0), lr * 0.1);
  EXPECT_DOUBLE_EQ(LearningRate(s, lr, 5), lr * (0.1 + 0.5 * 0.9));
  EXPECT_DOUBLE_EQ(LearningRate(s, lr, 10), lr * (0.01 + 0.99 * 1.0));
  EXPECT_NEAR(LearningRate(s, lr, 60), lr * (0.01 + 0.99 * 0.5), 1e-15);
  EXPECT_NEAR(LearningRate(s, lr, 110), lr * 0.01, 1e-15);
}

TEST(LossScaler, StaticScaleNeverMoves) {
  config::Fp16Options o;
  o.loss_scale = 128;
  LossScaler s(o);
  EXPECT_FALSE(s.dynamic());
  s.Update(true);
  s.Update(false);
  EXPECT_EQ(s.scale(), 128);
}

TEST(LossScaler, DynamicFollowsDeepSpeedRules) {
  config::Fp16Options o;
  o.initial_scale_power = 4;  // 16
  o.loss_scale_window = 3;
  o.hysteresis = 2;
  o.min_loss_scale = 2;
  LossScaler s(o);
  EXPECT_EQ(s.scale(), 16);
  s.Update(true);   // iter 0: hysteresis 2 -> 1, scale kept
  EXPECT_EQ(s.scale(), 16);
  s.Update(true);   // iter 1: hysteresis exhausted: halve
  EXPECT_EQ(s.scale(), 8);
  s.Update(false);  // iter 2: 1 since last overflow
  s.Update(false);  // iter 3: 2
  EXPECT_EQ(s.scale(), 8);
  s.Update(false);  // iter 4: 3 % window == 0 -> double, hysteresis reset
  EXPECT_EQ(s.scale(), 16);
  s.Update(true);   // hysteresis back at 2: absorbed
  EXPECT_EQ(s.scale(), 16);
  for (int i = 0; i < 10; ++i) s.Update(true);
  EXPECT_EQ(s.scale(), 2);  // floor at min_loss_scale
  LossScaler r(o);
  r.Restore(s.state());
  s.Update(false);
  r.Update(false);
  EXPECT_EQ(r.scale(), s.scale());
  EXPECT_EQ(r.state().iter, s.state().iter);
}

TEST(LossScaler, ConsecutiveHysteresisResetsOnGoodSteps) {
  config::Fp16Options o;
  o.initial_scale_power = 4;
  o.loss_scale_window = 1000;
  o.hysteresis = 2;
  o.consecutive_hysteresis = true;
  LossScaler s(o);
  s.Update(true);   // absorbed
  s.Update(false);  // good step resets hysteresis
  s.Update(true);   // absorbed again
  EXPECT_EQ(s.scale(), 16);
  config::Fp16Options p = o;
  p.consecutive_hysteresis = false;
  LossScaler t(p);
  t.Update(true);
  t.Update(false);
  t.Update(true);   // not reset: halves
  EXPECT_EQ(t.scale(), 8);
}

}  // namespace
}  // namespace zt
