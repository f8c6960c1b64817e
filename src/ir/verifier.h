// Verify: checks a Graph's structural and type invariants (see graph.h). Every error names the
// node (its schedule index, op and first output) or the value concerned, and says what is wrong.
#pragma once

#include "core/status.h"
#include "ir/graph.h"

namespace zt::ir {

Status Verify(const Graph& g);

}  // namespace zt::ir
