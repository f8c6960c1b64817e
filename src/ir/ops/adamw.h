// AdamW op family: one in-place optimizer update per parameter.
#pragma once

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterAdamWOps(OpRegistry& r);

// Layout of the per-step scalars input (f32[kAdamWScalars]) that every adamw node reads.
enum AdamWScalar : int {
  kAdamWLr = 0,              // learning rate of this step
  kAdamWBiasCorrection1,     // 1 - beta1^t
  kAdamWBiasCorrection2,     // 1 - beta2^t
  kAdamWGradMultiplier,      // stored gradients times this are the true gradients (1/loss scale)
  kAdamWMaxNorm,             // clip the global gradient norm to this; 0: no clipping
  kAdamWScalars
};

// Clipping coefficient for a true global gradient norm (torch.nn.utils.clip_grad_norm_'s rule).
inline double ClipCoefficient(double norm, double max_norm) {
  if (max_norm <= 0) return 1.0;
  double c = max_norm / (norm + 1e-6);
  return c < 1.0 ? c : 1.0;
}
}  // namespace zt::ir
