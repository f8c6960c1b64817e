// Memory planner: assigns every value a byte offset in an arena.
//  - Persistent values (inputs, params, states) get one arena per memory category, laid out one
//    after another, never reused.
//  - Intermediates of every category share one transient arena (allocated under the activations
//    category, after the persistent activations, i.e. the inputs): a value is live from the node
//    that defines it to its last use (graph outputs, the loss and gradients to the end of the
//    step); values whose live ranges overlap never overlap in it. Largest first, each at the
//    lowest offset free. One shared arena, not one per category, because the categories peak at
//    different times (activations at the end of the forward, gradients during the backward): the
//    sum of per-category peaks was 5.5 GiB above the true peak for Llama-8B under ZeRO-3.
//  - Aliases (views, in-place updates) share their root's memory and extend its live range; they
//    take the root's category.
//  - One workspace region serves every node: the largest workspace any node asks for (for the
//    plan's target device), at the end of the transient arena.
// Invariant: sizes are rounded up to kMemAlignment exactly as the allocators count them, so the
// predicted bytes equal what the executor measures (arena mode: the arenas; dynamic mode: the
// live peak).
#pragma once

#include <array>
#include <cstdint>

#include "core/mem_category.h"
#include "ir/op_registry.h"
#include "passes/pass.h"

namespace zt::passes {

class MemoryPlanner final : public Pass {
 public:
  std::string name() const override { return "memory_plan"; }
  StatusOr<bool> Run(ir::Graph& g) override;
};

// The arena a root value lives in, named by the category it is allocated under: its own
// category when persistent, the activations (transient) arena otherwise.
MemCategory ArenaCategory(const ir::Value* root);

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
  // Bytes allocated under each category: the persistent values of that category, plus, under
  // activations, the transient arena (every intermediate and the workspace region).
  std::array<int64_t, kNumMemCategories> arena_bytes{};
  std::array<int64_t, kNumMemCategories> persistent_bytes{};
  int64_t transient_bytes = 0;  // the shared transient arena, workspace region included
  int64_t arena_total = 0;
  // Peak bytes if each root were allocated at its definition and freed after its last use, with
  // each node's workspace allocated only while it runs (the executor's dynamic mode).
  std::array<int64_t, kNumMemCategories> live_peak{};
  int64_t live_peak_total = 0;
  int64_t workspace_bytes = 0;
  std::string ToString() const;
};
// Requires a planned graph (every root has an offset). CHECKs otherwise. `target` must be the one
// the graph was planned for (it sizes the workspace).
PlanStats ComputePlanStats(const ir::Graph& g, ir::Target target = ir::Target::kCpu);

}  // namespace zt::passes
