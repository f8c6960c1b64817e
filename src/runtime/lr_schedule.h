// Learning-rate schedules with DeepSpeed's semantics: WarmupLR, WarmupDecayLR, WarmupCosineLR, or
// a constant rate when no scheduler is configured. `step` counts applied optimizer updates from 0
// (a step skipped for fp16 overflow does not advance the schedule, as in DeepSpeed).
#pragma once

#include <cstdint>

#include "config/run_config.h"

namespace zt {

double LearningRate(const config::SchedulerOptions& s, double optimizer_lr, int64_t step);

}  // namespace zt
