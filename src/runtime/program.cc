// Program compilation: the pass pipeline and the plan summary.
#include "runtime/program.h"

#include "ir/op_registry.h"
#include "passes/dce.h"

namespace zt {

StatusOr<std::unique_ptr<Program>> Program::Compile(std::unique_ptr<ir::Graph> graph,
                                                    const CompileOptions& options) {
  passes::Pipeline pipeline;
  for (const auto& p : options.dump_after) pipeline.DumpAfter(p);
  if (options.dump_sink) pipeline.CaptureDumps(options.dump_sink);
  for (const auto& pass : options.passes) pipeline.Add(pass);
  if (options.dead_code_elimination) pipeline.Add(std::make_unique<passes::DeadCodeElimination>());
  pipeline.Add(std::make_unique<passes::MemoryPlanner>());
  ZT_RETURN_IF_ERROR(pipeline.Run(*graph));
  auto p = std::unique_ptr<Program>(new Program());
  p->graph_ = std::move(graph);
  p->target_ = options.target;
  p->plan_ = passes::ComputePlanStats(*p->graph_, options.target);
  for (const auto& n : p->graph_->nodes()) p->flops_[static_cast<int>(n->phase)] += ir::NodeCost(*n).flops;
  return p;
}

}  // namespace zt
