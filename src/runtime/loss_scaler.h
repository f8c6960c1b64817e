// Loss scaling for fp16 with DeepSpeed's semantics. Static when fp16.loss_scale > 0. Dynamic
// otherwise: start at 2^initial_scale_power; on an overflow, after `hysteresis` overflows
// (consecutive ones, with consecutive_hysteresis) halve the scale, never below min_loss_scale;
// after loss_scale_window steps without overflow since the last one, double it.
// Invariant: scale() is what the next step multiplies its loss by.
#pragma once

#include <cstdint>

#include "config/run_config.h"

namespace zt {

class LossScaler {
 public:
  // Disabled (scale 1, never changes) unless fp16 is in use.
  LossScaler() = default;
  explicit LossScaler(const config::Fp16Options& o);

  double scale() const { return scale_; }
  bool dynamic() const { return dynamic_; }
  // Call once per step with whether its gradients overflowed.
  void Update(bool overflow);

  // Everything a bit-exact resume needs.
  struct State {
    double scale = 1;
    int64_t iter = 0;
    int64_t last_overflow_iter = -1;
    int hysteresis_left = 0;
  };
  State state() const { return {scale_, iter_, last_overflow_iter_, hysteresis_left_}; }
  void Restore(const State& s);

 private:
  bool dynamic_ = false;
  double scale_ = 1;
  double min_scale_ = 1;
  int64_t window_ = 1000;
  int hysteresis_ = 1;
  bool consecutive_hysteresis_ = false;
  int64_t iter_ = 0;
  int64_t last_overflow_iter_ = -1;
  int hysteresis_left_ = 1;
};

}  // namespace zt
