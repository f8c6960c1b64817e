// Optimizer-step construction.
#include "ir/optimizer.h"

#include <vector>

#include "ir/builder.h"
#include "ir/ops/adamw.h"
#include "ir/ops/optim_utils.h"

namespace zt::ir {

std::string MasterName(const std::string& param) { return param + ".master"; }
std::string GradAccumName(const std::string& param) { return param + ".grad_acc"; }

Status AppendOptimizerStep(Graph& g, const OptimizerStepOptions& o) {
  if (g.grads().empty()) return FailedPrecondition("optimizer step: the graph has no gradients; run autodiff first");
  if (g.FindValue(kAdamWScalarsInput)) return FailedPrecondition("optimizer step: the graph already has one");
  if (o.grad_accum < 1) return InvalidArgument("optimizer step: grad_accum must be >= 1");
  Builder b(&g);
  auto grads = g.grads();  // copy: the loop adds values
  std::vector<Value*> stored;  // what the optimizer reads: the gradients or their accumulators
  if (o.grad_accum > 1) {
    b.set_phase(Phase::kBackward);
    for (auto& [p, grad] : grads) {
      Value* acc = b.State(GradAccumName(p->name), DType::kF32, p->shape, MemCategory::kGradients);
      // The accumulated value (an in-place successor of acc) is what later nodes read.
      stored.push_back(ops::Accumulate(b, acc, grad, p->name + ".accumulate"));
    }
  } else {
    for (auto& [p, grad] : grads) stored.push_back(grad);
  }
  b.set_phase(Phase::kOptimizer);
  Value* scalars = b.Input(kAdamWScalarsInput, DType::kF32, Shape{kAdamWScalars});
  Value* sumsq = ops::SumSquares(b, stored, kGradSumSquares);
  g.outputs().push_back(sumsq);  // read by the host after the step (norm logging, overflow)
  for (size_t i = 0; i < grads.size(); ++i) {
    Value* p = grads[i].first;
    Value* m = b.State(p->name + ".exp_avg", DType::kF32, p->shape, MemCategory::kOptimizerState);
    Value* v = b.State(p->name + ".exp_avg_sq", DType::kF32, p->shape, MemCategory::kOptimizerState);
    std::vector<Value*> in = {p, stored[i], m, v, scalars, sumsq};
    if (o.master_weights) in.push_back(b.State(MasterName(p->name), DType::kF32, p->shape, MemCategory::kOptimizerState));
    double wd = (o.adamw.no_decay_for_vectors && p->shape.rank() < 2) ? 0.0 : o.adamw.weight_decay;
    b.Emit("adamw", in,
           {{"beta1", o.adamw.beta1}, {"beta2", o.adamw.beta2}, {"eps", o.adamw.eps}, {"weight_decay", wd}},
           p->name + ".update");
  }
  if (o.grad_accum > 1) {
    for (size_t i = 0; i < grads.size(); ++i) ops::Zero(b, stored[i], grads[i].first->name + ".grad_reset");
  }
  return OkStatus();
}

}  // namespace zt::ir
