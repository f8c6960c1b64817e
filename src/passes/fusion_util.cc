// The shared pieces of the fusion passes (fusion_util.h).
#include "passes/fusion_util.h"

#include <algorithm>

namespace zt::passes {

using ir::Node;
using ir::Value;

bool IsStepResult(const ir::Graph& g, const Value* v) {
  if (g.loss() == v || std::find(g.outputs().begin(), g.outputs().end(), v) != g.outputs().end()) return true;
  for (const auto& [p, gr] : g.grads())
    if (gr == v) return true;
  return false;
}

Node* ReplaceByFusedNode(ir::Graph& g, const std::vector<Node*>& group, const ir::OpDef* op, std::vector<Value*> inputs,
                         ir::AttrMap attrs, const std::vector<Value*>& replaced, const Node* at) {
  auto in_group = [&](const Node* n) { return std::find(group.begin(), group.end(), n) != group.end(); };
  // Everything that refers to the group, read before the group goes (removing a node erases the
  // edges onto it and frees its output names).
  std::vector<Node*> deps, dependents;
  for (const Node* n : group)
    for (Node* d : n->deps)
      if (!in_group(d) && std::find(deps.begin(), deps.end(), d) == deps.end()) deps.push_back(d);
  for (const auto& n : g.nodes()) {
    if (in_group(n.get())) continue;
    if (std::any_of(n->deps.begin(), n->deps.end(), in_group)) dependents.push_back(n.get());
  }
  Node* before = nullptr;
  for (int i = g.NodeIndex(at); i < static_cast<int>(g.nodes().size()); ++i) {
    if (!in_group(g.nodes()[i].get())) {
      before = g.nodes()[i].get();
      break;
    }
  }
  std::vector<ir::Graph::OutputSpec> specs;
  for (const Value* r : replaced) specs.push_back({r->name, r->dtype, r->shape});
  const ir::Phase phase = group.front()->phase;
  const int stream = group.front()->stream;

  for (Node* n : group) g.RemoveNode(n);
  Node* fused = g.AddNode(op, std::move(inputs), std::move(attrs), specs, before);
  fused->phase = phase;
  fused->stream = stream;
  fused->deps = std::move(deps);
  for (size_t i = 0; i < replaced.size(); ++i) {
    fused->outputs[i]->category = replaced[i]->category;
    g.ReplaceAllUses(replaced[i], fused->outputs[i]);
  }
  for (Node* n : dependents) n->deps.push_back(fused);
  return fused;
}

}  // namespace zt::passes
