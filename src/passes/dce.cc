// Dead-code elimination.
#include "passes/dce.h"

#include <set>

#include "ir/op_registry.h"

namespace zt::passes {

StatusOr<bool> DeadCodeElimination::Run(ir::Graph& g) {
  bool changed = false;
  // One backward sweep finds everything live; a node is live when it has side effects or when any
  // output is needed, and then all of its inputs are needed.
  std::set<const ir::Value*> needed(g.outputs().begin(), g.outputs().end());
  if (g.loss()) needed.insert(g.loss());
  for (auto& [p, gr] : g.grads()) needed.insert(gr);
  std::set<const ir::Node*> live;
  const auto& nodes = g.nodes();
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    const ir::Node* n = it->get();
    bool is_live = n->op->side_effects;
    for (const ir::Value* o : n->outputs) is_live |= needed.count(o) > 0;
    if (!is_live) {
      for (const ir::Node* other : live)  // an ordering edge to it keeps it too
        for (const ir::Node* d : other->deps) is_live |= d == n;
    }
    if (!is_live) continue;
    live.insert(n);
    for (const ir::Value* in : n->inputs) needed.insert(in);
  }
  std::vector<ir::Node*> dead;
  for (auto& n : nodes)
    if (!live.count(n.get())) dead.push_back(n.get());
  for (ir::Node* n : dead) {
    g.RemoveNode(n);
    changed = true;
  }
  return changed;
}

}  // namespace zt::passes
