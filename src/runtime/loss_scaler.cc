// Dynamic loss scaler (DeepSpeed's DynamicLossScaler rules).
#include "runtime/loss_scaler.h"

#include <algorithm>
#include <cmath>

namespace zt {

LossScaler::LossScaler(const config::Fp16Options& o) {
  if (o.loss_scale > 0) {
    scale_ = o.loss_scale;
    return;
  }
  dynamic_ = true;
  scale_ = std::ldexp(1.0, o.initial_scale_power);
  min_scale_ = o.min_loss_scale;
  window_ = o.loss_scale_window;
  hysteresis_ = o.hysteresis;
  consecutive_hysteresis_ = o.consecutive_hysteresis;
  hysteresis_left_ = hysteresis_;
}

void LossScaler::Update(bool overflow) {
  if (!dynamic_) return;
  if (overflow) {
    if (hysteresis_ == 1 || hysteresis_left_ == 1) {
      scale_ = std::max(scale_ / 2.0, min_scale_);
    } else {
      --hysteresis_left_;
    }
    last_overflow_iter_ = iter_;
  } else {
    if (consecutive_hysteresis_) hysteresis_left_ = hysteresis_;
    if ((iter_ - last_overflow_iter_) % window_ == 0) {
      if (!consecutive_hysteresis_) hysteresis_left_ = hysteresis_;
      scale_ *= 2.0;
    }
  }
  ++iter_;
}

void LossScaler::Restore(const State& s) {
  scale_ = s.scale;
  iter_ = s.iter;
  last_overflow_iter_ = s.last_overflow_iter;
  hysteresis_left_ = s.hysteresis_left;
}

}  // namespace zt
