// Fusion passes: graph rewrites that replace a group of nodes by one fused node computing the same
// values with fewer passes over memory or fewer launches. They run after the sharding passes
// (data parallelism, ZeRO) and before dead-code elimination and the memory planner. ZT_FUSION
// picks them: "1" (default) the fusions that pay on the GPU, "all" every one, "0" none (for
// comparisons and for bisecting a numerical difference), or a comma-separated list of names:
//   add_norm      residual add + layernorm/rmsnorm, forward and backward (fuse_add_norm)
//   matmul_gelu   matmul + gelu and matmul + gelu_bwd as cuBLASLt epilogues (fuse_matmul_epilogue)
//   matmul_bgrad  weight-gradient matmul + bias-gradient sum as a BGRADA/B epilogue; not in the
//                 default set: on an H200 the epilogue slows the GEMM by more than the separate
//                 sum costs (docs/performance.md)
//   adamw         groups of adamw nodes as multi-tensor adamw_multi nodes (fuse_adamw)
// Invariant: a fusion pass changes how values are computed, never which values the step reads,
// writes or returns (parameters, states, outputs, gradients keep their names and types).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "passes/pass.h"

namespace zt::passes {

struct FusionSet {
  bool add_norm = true;
  bool matmul_gelu = true;
  bool matmul_bgrad = false;
  bool adamw = true;
  bool any() const { return add_norm || matmul_gelu || matmul_bgrad || adamw; }
};

// Parses a ZT_FUSION value (see above); the error names the unknown item and lists the names.
StatusOr<FusionSet> ParseFusionSet(const std::string& text);

// The set ZT_FUSION selects. A malformed value exits with a clear error (settings come from the
// user: not a crash).
FusionSet FusionFromSettings();

// The fusion passes of `set` in the order they run; without an argument, of ZT_FUSION's set.
std::vector<std::shared_ptr<Pass>> FusionPasses(const FusionSet& set);
std::vector<std::shared_ptr<Pass>> FusionPasses();

}  // namespace zt::passes
