// Pass: one rewrite or analysis of a Graph. Run returns whether the graph changed, or an error
// that says what could not be done. Passes never touch devices.
#pragma once

#include <string>

#include "core/status.h"
#include "ir/graph.h"

namespace zt::passes {

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string name() const = 0;
  virtual StatusOr<bool> Run(ir::Graph& g) = 0;
};

}  // namespace zt::passes
