// DeepSpeed-compatible learning-rate schedules.
#include "runtime/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace zt {
namespace {

// Fraction of warmup done at `step`: log(step+1)/log(warmup) or step/warmup; 1 after warmup.
double WarmupGamma(const config::SchedulerOptions& s, int64_t step) {
  if (step >= s.warmup_num_steps) return 1.0;
  if (s.warmup_type == "linear") return static_cast<double>(step) / static_cast<double>(s.warmup_num_steps);
  if (s.warmup_num_steps <= 1) return 1.0;
  return std::log(static_cast<double>(step + 1)) / std::log(static_cast<double>(s.warmup_num_steps));
}

}  // namespace

double LearningRate(const config::SchedulerOptions& s, double optimizer_lr, int64_t step) {
  ZT_CHECK_GE(step, 0);
  if (s.type.empty()) return optimizer_lr;
  if (s.type == "WarmupLR") {
    return s.warmup_min_lr + (s.warmup_max_lr - s.warmup_min_lr) * WarmupGamma(s, step);
  }
  if (s.type == "WarmupDecayLR") {
    double gamma;
    if (step < s.warmup_num_steps) {
      gamma = WarmupGamma(s, step);
    } else {
      gamma = std::max(0.0, static_cast<double>(s.total_num_steps - step) /
                                std::max<double>(1.0, static_cast<double>(s.total_num_steps - s.warmup_num_steps)));
    }
    return s.warmup_min_lr + (s.warmup_max_lr - s.warmup_min_lr) * gamma;
  }
  if (s.type == "WarmupCosineLR") {
    double ratio;
    if (step < s.warmup_num_steps) {
      ratio = s.warmup_min_ratio + WarmupGamma(s, step) * (1.0 - s.warmup_min_ratio);
    } else {
      double done = static_cast<double>(step - s.warmup_num_steps);
      double total = std::max<double>(1.0, static_cast<double>(s.total_num_steps - s.warmup_num_steps));
      double cosine = (1.0 + std::cos(M_PI * std::min(1.0, done / total))) / 2.0;
      ratio = std::max(0.0, s.cos_min_ratio + (1.0 - s.cos_min_ratio) * cosine);
    }
    return optimizer_lr * ratio;
  }
  ZT_CHECK(false) << "unknown scheduler type " << s.type << " (the config parser accepts none other)";
  return 0;
}

}  // namespace zt
