// What the fusion passes share: whether a value is read after the step, and the replacement of a
// group of nodes by one fused node. Invariant: the fused node's outputs take over the replaced
// values completely (names, types, memory categories, every use and step result), and ordering
// edges between the group and the rest of the graph keep holding through the fused node.
#pragma once

#include <vector>

#include "ir/graph.h"
#include "ir/op_registry.h"

namespace zt::passes {

// Whether v is read after the step: a graph output, the loss or a gradient entry.
bool IsStepResult(const ir::Graph& g, const ir::Value* v);

// Replaces the nodes of `group` by one node of `op` with `inputs` and `attrs` (normalized and
// type-checked by the caller), in phase and stream of group[0]. It stands where `at` stood (`at`
// may be a group node: then before the first node after it that is not in the group). Output i
// takes the name, type and category of replaced[i] and every use of it. The fused node inherits
// the group's ordering edges to other nodes, and every node ordered after a group node is ordered
// after it.
ir::Node* ReplaceByFusedNode(ir::Graph& g, const std::vector<ir::Node*>& group, const ir::OpDef* op,
                             std::vector<ir::Value*> inputs, ir::AttrMap attrs,
                             const std::vector<ir::Value*>& replaced, const ir::Node* at);

}  // namespace zt::passes
