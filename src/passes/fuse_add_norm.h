// FuseAddNorm ("fuse_add_norm"): fuses each residual add into the normalization next to it, in the
// forward and in the backward of the step graph (after autodiff and the sharding passes).
//
// Forward: r = add(a, b) (a, b of one shape: no broadcasting) whose r is input 0 of a layernorm or
// rmsnorm becomes one add_layernorm(a, b, w, bias) / add_rmsnorm(a, b, w) at the NORM's place in
// the schedule (ZeRO-3 puts the norm's weight gathers and views between the two), valid only if
// no node in between reads r. The fused node defines r itself (its output 0) and the norm's
// outputs (y, mean, rstd): every Value keeps its identity and name, so users, graph outputs, the
// loss and the gradient entries need no rewriting.
// Backward: layernorm_bwd / rmsnorm_bwd whose dx is used exactly once, by add(dx, o) or add(o, dx)
// of dx's type, gets o as its dresidual input and defines the add's result in place of dx (dx
// goes away). It takes the add's place if no node in between reads its other outputs (dw, db),
// else stays at its own place if o is defined before it, else nothing is fused.
// Both are also refused where they would reorder a memory hazard: a node in between that
// overwrites (in place) an input whose read moves later, nodes of different phases or streams, or
// an ordering edge (Node::deps) the move would break.
// Invariant: the fused kernels are bit-identical to the pairs they replace, so the step computes
// exactly the same values (tests/runtime/fusion_equivalence_test.cc).
#pragma once

#include <string>

#include "passes/pass.h"

namespace zt::passes {

class FuseAddNorm final : public Pass {
 public:
  std::string name() const override { return "fuse_add_norm"; }
  StatusOr<bool> Run(ir::Graph& g) override;
};

}  // namespace zt::passes
