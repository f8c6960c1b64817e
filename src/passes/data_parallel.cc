// Gradient all-reduce for data parallelism.
#include "passes/data_parallel.h"

#include <map>

#include "ir/builder.h"
#include "ir/ops/collective.h"
#include "ir/optimizer.h"
#include "passes/zero.h"

namespace zt::passes {

StatusOr<bool> DataParallelPass::Run(ir::Graph& g) {
  if (world_size_ <= 1) return false;
  ir::Value* sumsq = g.FindValue(ir::kGradSumSquares);
  if (sumsq == nullptr || sumsq->producer == nullptr)
    return FailedPrecondition("data_parallel: the graph has no optimizer step; run AppendOptimizerStep first");
  ir::Node* norm = sumsq->producer;
  ir::Builder b(&g);
  b.set_insert_before(norm);
  b.set_phase(ir::Phase::kOptimizer);
  b.set_stream(1);
  std::map<ir::Value*, ir::Value*> reduced;
  for (ir::Value*& in : norm->inputs) {
    ir::Value* r = ir::ops::AllReduce(b, in, "avg", in->name + ".allreduce");
    r->category = MemCategory::kGradients;
    reduced[in] = r;
    in = r;
  }
  for (const auto& n : g.nodes()) {
    if (n->op->name != "adamw") continue;
    auto it = reduced.find(n->inputs[1]);
    if (it != reduced.end()) n->inputs[1] = it->second;
  }
  AppendGlobalLoss(g);
  return true;
}

}  // namespace zt::passes
