// AdamW op family: adamw, one in-place optimizer update per parameter, and adamw_multi, the same
// update of many parameters in one node (one launch on CUDA). AdamWMultiLayout is the one place
// that says where adamw_multi's inputs and outputs are.
#pragma once

#include <cstdint>

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

// Inputs of adamw_multi over k tensors, grouped by role:
//   [scalars, grad_sumsq, p_0..p_{k-1}, m_0..m_{k-1}, v_0..v_{k-1}, (w_0..w_{k-1}), g_0..g_{k-1}]
// (w: f32 master weights, present iff masters). Outputs [p'_0.., m'_0.., v'_0.., (w'_0..)]:
// output o is input o + kAdamWMultiShift, updated in place.
inline constexpr int kAdamWMultiShift = 2;
struct AdamWMultiLayout {
  int64_t k = 0;
  bool masters = false;
  // The layout of a node with `tensors` = k and `inputs` inputs (masters iff 2 + 5k of them).
  static AdamWMultiLayout Of(int64_t k, size_t inputs) {
    return {k, static_cast<int64_t>(inputs) == 2 + 5 * k};
  }
  static constexpr int64_t kScalarsInput = 0, kGradSumsqInput = 1;
  int64_t param(int64_t i) const { return 2 + i; }
  int64_t exp_avg(int64_t i) const { return 2 + k + i; }
  int64_t exp_avg_sq(int64_t i) const { return 2 + 2 * k + i; }
  int64_t master(int64_t i) const { return 2 + 3 * k + i; }  // only when masters
  int64_t grad(int64_t i) const { return 2 + (masters ? 4 : 3) * k + i; }
  int64_t inputs() const { return 2 + (masters ? 5 : 4) * k; }
  int64_t outputs() const { return (masters ? 4 : 3) * k; }
};
}  // namespace zt::ir
