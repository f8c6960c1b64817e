// Dead-code elimination: removes nodes none of whose outputs is used (by a node, the graph
// outputs, the loss or a gradient entry), unless their op has side effects. Repeats to a fixpoint.
#pragma once

#include "passes/pass.h"

namespace zt::passes {

class DeadCodeElimination final : public Pass {
 public:
  std::string name() const override { return "dce"; }
  StatusOr<bool> Run(ir::Graph& g) override;
};

}  // namespace zt::passes
