// Memory planner: assigns every value a byte offset in one arena per memory category.
//  - Persistent values (inputs, params, states) are laid out one after another, never reused.
//  - Intermediates get offsets by liveness: a value is live from the node that defines it to its
//    last use (graph outputs, the loss and gradients to the end of the step); values whose live
//    ranges overlap never overlap in their arena. Largest first, each at the lowest offset free.
//  - Aliases (views, in-place updates) share their root's memory and extend its live range; they
//    take the root's category.
//  - One workspace buffer serves every node: the largest workspace any node asks for.
// Invariant: sizes are rounded up to kMemAlignment exactly as the allocators count them, so the
// predicted bytes equal what the executor measures (arena mode: the arenas; dynamic mode: the
// live peak).
#pragma once

#include <array>
#include <cstdint>

#include "core/mem_category.h"
#include "passes/pass.h"

namespace zt::passes {

class MemoryPlanner final : public Pass {
 public:
  std::string name() const override { return "memory_plan"; }
  StatusOr<bool> Run(ir::Graph& g) override;
};

// The value whose memory v uses (itself unless v is a view or an in-place result).
ir::Value* AliasRoot(ir::Value* v);
const ir::Value* AliasRoot(const ir::Value* v);

struct LiveRange {
  int def = -1;  // schedule index of the defining node; -1 for persistent values
  int end = -1;  // last schedule index at which it is needed; nodes().size() for "to the end"
};
// Live range of each root value (persistent ones span the whole step).
std::map<const ir::Value*, LiveRange> ComputeLiveRanges(const ir::Graph& g);

struct PlanStats {
  std::array<int64_t, kNumMemCategories> arena_bytes{};  // workspace included as its category
  int64_t arena_total = 0;
  // Peak bytes if each root were allocated at its definition and freed after its last use, with
  // each node's workspace allocated only while it runs (the executor's dynamic mode).
  std::array<int64_t, kNumMemCategories> live_peak{};
  int64_t live_peak_total = 0;
  int64_t workspace_bytes = 0;
  std::string ToString() const;
};
// Requires a planned graph (every root has an offset). CHECKs otherwise.
PlanStats ComputePlanStats(const ir::Graph& g);

}  // namespace zt::passes
