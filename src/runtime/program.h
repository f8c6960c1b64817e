// Program: a training-step graph after the pass pipeline, with its memory plan and per-node
// facts (flops, workspace), ready for an Executor. Invariant: the graph has been verified and
// planned; the Program does not change it afterwards.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "passes/memory_planner.h"
#include "passes/pipeline.h"

namespace zt {

struct CompileOptions {
  // Rewrites run first, in order (data parallelism, ZeRO, ...); then DCE and the memory planner.
  std::vector<std::shared_ptr<passes::Pass>> passes;
  bool dead_code_elimination = true;
  // Pass names after which to dump IR (in addition to ZT_DUMP_IR).
  std::vector<std::string> dump_after;
  // When set, dumps are captured here instead of written.
  std::vector<std::pair<std::string, std::string>>* dump_sink = nullptr;
  // The device the plan is for (sizes the workspace region); the executor must run it there.
  ir::Target target = ir::Target::kCpu;
};

class Program {
 public:
  // Runs the pass pipeline (DCE, memory planner) over `graph` and takes ownership of it.
  static StatusOr<std::unique_ptr<Program>> Compile(std::unique_ptr<ir::Graph> graph,
                                                    const CompileOptions& options = {});

  const ir::Graph& graph() const { return *graph_; }
  ir::Graph& mutable_graph() { return *graph_; }
  const passes::PlanStats& plan() const { return plan_; }
  ir::Target target() const { return target_; }
  // Flops of one run of every node; and by phase (forward, backward, optimizer).
  double flops_per_step() const { return flops_[0] + flops_[1] + flops_[2]; }
  double flops(ir::Phase p) const { return flops_[static_cast<int>(p)]; }

 private:
  std::unique_ptr<ir::Graph> graph_;
  passes::PlanStats plan_;
  ir::Target target_ = ir::Target::kCpu;
  double flops_[3] = {0, 0, 0};
};

}  // namespace zt
