// Fusion passes: graph rewrites that replace a group of nodes by one fused node computing the same
// values with fewer passes over memory or fewer launches. They run after the sharding passes
// (data parallelism, ZeRO) and before dead-code elimination and the memory planner. ZT_FUSION=0
// leaves them all out (for comparisons and for bisecting a numerical difference).
// Invariant: a fusion pass changes how values are computed, never which values the step reads,
// writes or returns (parameters, states, outputs, gradients keep their names and types).
#pragma once

#include <memory>
#include <vector>

#include "passes/pass.h"

namespace zt::passes {

// Whether ZT_FUSION allows fusion (default on). A malformed value exits with a clear error.
bool FusionEnabled();

// The fusion passes in the order they run; empty when FusionEnabled() is false.
std::vector<std::shared_ptr<Pass>> FusionPasses();

}  // namespace zt::passes
