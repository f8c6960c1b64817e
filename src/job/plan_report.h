// `ztrain compile`: the step program of a run without running it: per-phase node counts and
// flops, parameter count, and the memory plan's predicted bytes per category (arena and live
// peak; intermediates share one transient arena), plus the IR after any pass on request.
#pragma once

#include <string>
#include <vector>

#include "config/run_config.h"
#include "ir/op_registry.h"

namespace zt::job {

struct CompileRequest {
  std::vector<std::string> dump_after;  // pass names ("input", "zero", "data_parallel", "dce", "memory_plan", "all")
  int world_size = 1;                   // ranks to plan for (ZeRO shards, per-rank memory)
  ir::Target target = ir::Target::kCpu;  // the device to plan for (workspace sizes)
};

// Returns the report text (dumps first, then the summary).
StatusOr<std::string> CompileReport(const config::RunConfig& c, const CompileRequest& r);

}  // namespace zt::job
