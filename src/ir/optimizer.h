// Appends the optimizer step to a graph that has a backward pass: one adamw node per parameter
// (phase optimizer), its two f32 moment states, and the per-step scalars input that the runtime
// fills (learning rate, bias corrections, gradient multiplier; see ir/ops/adamw.h).
#pragma once

#include <string>

#include "core/status.h"
#include "ir/graph.h"

namespace zt::ir {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
  // When true, parameters of rank < 2 (biases, norm gains) get no weight decay (GPT-2 practice).
  bool no_decay_for_vectors = false;
};

inline constexpr const char* kAdamWScalarsInput = "optimizer.scalars";

// Requires g.grads() (from AppendBackward). Adds states "<param>.exp_avg" and "<param>.exp_avg_sq".
Status AppendAdamW(Graph& g, const AdamWOptions& options);

}  // namespace zt::ir
