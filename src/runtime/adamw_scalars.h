// The per-step scalars every adamw node reads (layout in ir/ops/adamw.h), computed on the host in
// double as torch.optim.AdamW computes them, then stored as f32.
#pragma once

#include <array>
#include <cstdint>

#include "ir/ops/adamw.h"

namespace zt {

// step counts from 1 (the first update is step 1). grad_multiplier: stored gradients times this
// are the true gradients (1/loss scale); max_norm: global-norm clipping threshold, 0 for none.
std::array<float, ir::kAdamWScalars> AdamWStepScalars(int64_t step, double lr, double beta1, double beta2,
                                                      double grad_multiplier = 1.0, double max_norm = 0.0);

}  // namespace zt
