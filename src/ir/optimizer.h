// Appends the optimizer step to a graph that has a backward pass (Graph::grads()):
//  - grad_accum > 1: one f32 accumulation buffer per parameter ("<p>.grad_acc", gradients
//    category); each micro-batch's backward ends with accumulate(acc, grad); the optimizer reads
//    the buffers and zeroes them after the update;
//  - sum_squares over every stored gradient ("optimizer.grad_sumsq": the squared global norm, for
//    clipping, overflow detection and logging);
//  - one in-place adamw node per parameter with its two f32 moments ("<p>.exp_avg",
//    "<p>.exp_avg_sq") and, with master_weights, an f32 master copy ("<p>.master"), all in the
//    optimizer_state category;
//  - the per-step scalars input "optimizer.scalars" (ir/ops/adamw.h) that the runtime fills.
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

struct OptimizerStepOptions {
  AdamWOptions adamw;
  bool master_weights = false;  // f32 master copies of low-precision parameters
  int64_t grad_accum = 1;       // micro-batches per optimizer step
};

inline constexpr const char* kAdamWScalarsInput = "optimizer.scalars";
inline constexpr const char* kGradSumSquares = "optimizer.grad_sumsq";

Status AppendOptimizerStep(Graph& g, const OptimizerStepOptions& options);

// Names of the per-parameter states the optimizer step adds.
std::string MasterName(const std::string& param);
std::string GradAccumName(const std::string& param);

}  // namespace zt::ir
