// FuseAdamW ("fuse_adamw"): replaces groups of adamw nodes by adamw_multi nodes (ir/ops/adamw.cc),
// one node (one CUDA launch) per group instead of one per parameter.
//
// Members of a group share the attributes (beta1, beta2, eps, weight_decay, compared bit for
// bit), the parameter dtype, the gradient dtype, whether master weights are present, the same
// scalars and grad_sumsq values, the phase and the stream. The fused node takes the schedule
// position of the group's LAST member, so the earlier members move later: scanning the schedule,
// a node that reads memory a member of an open group updates (its outputs or anything aliasing
// them), overwrites in place memory a member reads, or depends on a member closes that group (it
// is emitted before the node). Groups of one stay plain adamw. Every use of a member's output
// (node inputs, graph outputs, gradients, ordering edges) moves to the fused node, whose outputs
// keep the members' value names.
//
// On the step graphs (ir/optimizer.cc, passes/zero.cc): ZeRO-0 and ZeRO-3 updates are contiguous
// and become one node per weight-decay group; at ZeRO-1/2 each unit's update is read at once by
// its cast / all-gather / unpack, so every update stays its own node (and the all-gathers keep
// overlapping the later updates); the accumulator resets of grad_accum > 1 come after the updates.
// Invariant: the step computes bit-identical values; no node reads a value before the node that
// produces it or after an in-place node overwrote it (the verifier holds after the pass).
#pragma once

#include "passes/pass.h"

namespace zt::passes {

class FuseAdamW final : public Pass {
 public:
  std::string name() const override { return "fuse_adamw"; }
  StatusOr<bool> Run(ir::Graph& g) override;
};

}  // namespace zt::passes
