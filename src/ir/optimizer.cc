// AdamW step construction.
#include "ir/optimizer.h"

#include "ir/builder.h"
#include "ir/ops/adamw.h"

namespace zt::ir {

Status AppendAdamW(Graph& g, const AdamWOptions& o) {
  if (g.grads().empty()) return FailedPrecondition("AppendAdamW: the graph has no gradients; run autodiff first");
  if (g.FindValue(kAdamWScalarsInput)) return FailedPrecondition("AppendAdamW: the graph already has an optimizer");
  Builder b(&g);
  b.set_phase(Phase::kOptimizer);
  Value* scalars = b.Input(kAdamWScalarsInput, DType::kF32, Shape{kAdamWScalars});
  auto grads = g.grads();  // copy: the loop adds values
  for (auto& [p, grad] : grads) {
    Value* m = b.State(p->name + ".exp_avg", DType::kF32, p->shape, MemCategory::kOptimizerState);
    Value* v = b.State(p->name + ".exp_avg_sq", DType::kF32, p->shape, MemCategory::kOptimizerState);
    double wd = (o.no_decay_for_vectors && p->shape.rank() < 2) ? 0.0 : o.weight_decay;
    b.Emit("adamw", {p, grad, m, v, scalars},
           {{"beta1", o.beta1}, {"beta2", o.beta2}, {"eps", o.eps}, {"weight_decay", wd}},
           p->name + ".update");
  }
  return OkStatus();
}

}  // namespace zt::ir
