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
  kAdamWGradMultiplier,      // gradients are multiplied by this first (clipping, loss unscaling)
  kAdamWScalars
};
}  // namespace zt::ir
