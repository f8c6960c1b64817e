// AdamW step scalars.
#include "runtime/adamw_scalars.h"

#include <cmath>

#include "core/check.h"

namespace zt {

std::array<float, ir::kAdamWScalars> AdamWStepScalars(int64_t step, double lr, double beta1, double beta2,
                                                      double grad_multiplier, double max_norm) {
  ZT_CHECK_GE(step, 1);
  std::array<float, ir::kAdamWScalars> s{};
  s[ir::kAdamWLr] = static_cast<float>(lr);
  s[ir::kAdamWBiasCorrection1] = static_cast<float>(1.0 - std::pow(beta1, static_cast<double>(step)));
  s[ir::kAdamWBiasCorrection2] = static_cast<float>(1.0 - std::pow(beta2, static_cast<double>(step)));
  s[ir::kAdamWGradMultiplier] = static_cast<float>(grad_multiplier);
  s[ir::kAdamWMaxNorm] = static_cast<float>(max_norm);
  return s;
}

}  // namespace zt
