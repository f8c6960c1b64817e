// The residual add + norm fusion (see fuse_add_norm.h). Nodes are rewritten in place: the norm
// (or norm backward) node changes its op and inputs and takes over the add's output Value, and the
// add node is removed; no Value is created or renamed.
#include "passes/fuse_add_norm.h"

#include <algorithm>
#include <set>
#include <vector>

#include "ir/op_registry.h"
#include "passes/fusion_util.h"

namespace zt::passes {
namespace {

using ir::Graph;
using ir::Node;
using ir::Value;

struct NormFamily {
  const char* norm;   // the forward op
  const char* fused;  // its fused residual-add form
  const char* bwd;    // its backward op
  size_t bwd_inputs;  // inputs of the backward without dresidual
};

constexpr NormFamily kFamilies[] = {
    {"layernorm", "add_layernorm", "layernorm_bwd", 5},
    {"rmsnorm", "add_rmsnorm", "rmsnorm_bwd", 4},
};

const NormFamily* FamilyOf(const Node* n, bool backward) {
  for (const NormFamily& f : kFamilies)
    if (n->op->name == (backward ? f.bwd : f.norm)) return &f;
  return nullptr;
}

bool IsAdd(const Node* n) { return n != nullptr && n->op->name == "add"; }

bool Contains(const std::vector<Value*>& vs, const Value* v) { return std::find(vs.begin(), vs.end(), v) != vs.end(); }

// Whether a node strictly between schedule positions lo and hi reads one of `values`.
bool ReadBetween(const Graph& g, int lo, int hi, const std::vector<Value*>& values) {
  for (int i = lo + 1; i < hi; ++i)
    for (const Value* in : g.nodes()[i]->inputs)
      if (Contains(values, in)) return true;
  return false;
}

// Whether a node strictly between lo and hi overwrites in place the memory of one of `values`
// (through any view of it): reading them after such a node would read the new contents.
bool OverwrittenBetween(const Graph& g, int lo, int hi, const std::vector<Value*>& values) {
  std::set<const Value*> roots;
  for (const Value* v : values) roots.insert(ir::ResolveAlias(v).root);
  for (int i = lo + 1; i < hi; ++i) {
    const Node& n = *g.nodes()[i];
    for (int o = 0; o < static_cast<int>(n.outputs.size()); ++o) {
      int input = -1;
      const ir::Alias* a = ir::FindAlias(n, o, &input);
      if (a != nullptr && a->kind == ir::AliasKind::kInPlace && roots.count(ir::ResolveAlias(n.inputs[input]).root))
        return true;
    }
  }
  return false;
}

// Whether the ordering edges stay valid when `removed` goes away and `kept` ends at schedule
// position `pos` (positions of the graph before the rewrite): kept inherits removed's
// dependencies, which must lie before pos; nodes that depend on either must lie after pos.
bool DepsAllow(const Graph& g, const Node* kept, const Node* removed, int pos) {
  for (const Node* d : removed->deps)
    if (d != kept && g.NodeIndex(d) >= pos) return false;
  for (int i = 0; i < static_cast<int>(g.nodes().size()); ++i) {
    const Node* m = g.nodes()[i].get();
    if (m == kept || m == removed) continue;
    bool depends = std::find(m->deps.begin(), m->deps.end(), kept) != m->deps.end() ||
                   std::find(m->deps.begin(), m->deps.end(), removed) != m->deps.end();
    if (depends && i <= pos) return false;
  }
  return true;
}

// Moves removed's ordering edges (both directions) to kept.
void MergeDeps(Graph& g, Node* kept, Node* removed) {
  auto add_dep = [](Node* n, Node* d) {
    if (std::find(n->deps.begin(), n->deps.end(), d) == n->deps.end()) n->deps.push_back(d);
  };
  std::erase(kept->deps, removed);
  for (Node* d : removed->deps)
    if (d != kept) add_dep(kept, d);
  for (const auto& m : g.nodes()) {
    if (m.get() == kept || m.get() == removed) continue;
    if (std::erase(m->deps, removed) > 0) add_dep(m.get(), kept);
  }
}

bool DefinedBefore(const Graph& g, const Value* v, int pos) {
  return v->producer == nullptr || g.NodeIndex(v->producer) < pos;
}

// r = add(a, b); norm(r, ...) -> add_norm(a, b, ...) at the norm's place.
bool FuseForward(Graph& g, Node* norm) {
  const NormFamily* f = FamilyOf(norm, false);
  Value* r = norm->inputs[0];
  Node* add = r->producer;
  if (f == nullptr || !IsAdd(add)) return false;
  Value* a = add->inputs[0];
  Value* b = add->inputs[1];
  if (a->shape != b->shape || a->dtype != b->dtype) return false;  // a broadcasting add
  if (std::count(norm->inputs.begin(), norm->inputs.end(), r) != 1) return false;
  if (add->phase != norm->phase || add->stream != norm->stream) return false;
  const int ia = g.NodeIndex(add), in = g.NodeIndex(norm);
  if (ReadBetween(g, ia, in, {r}) || OverwrittenBetween(g, ia, in, {a, b}) || !DepsAllow(g, norm, add, in)) {
    return false;
  }
  std::vector<Value*> inputs = {a, b};
  inputs.insert(inputs.end(), norm->inputs.begin() + 1, norm->inputs.end());
  norm->op = ir::GetOp(f->fused);
  norm->inputs = std::move(inputs);
  norm->outputs.insert(norm->outputs.begin(), r);
  for (int i = 0; i < static_cast<int>(norm->outputs.size()); ++i) {
    norm->outputs[i]->producer = norm;
    norm->outputs[i]->producer_index = i;
  }
  MergeDeps(g, norm, add);
  add->outputs.clear();  // r now belongs to the fused node
  g.RemoveNode(add);
  return true;
}

// dx, ... = norm_bwd(...); s = add(dx, o) -> s, ... = norm_bwd(..., dresidual = o).
bool FuseBackward(Graph& g, Node* bwd) {
  const NormFamily* f = FamilyOf(bwd, true);
  if (f == nullptr || bwd->inputs.size() != f->bwd_inputs) return false;
  Value* dx = bwd->outputs[0];
  if (IsStepResult(g, dx)) return false;
  Node* add = nullptr;
  int uses = 0;
  for (const auto& n : g.nodes()) {
    for (const Value* in : n->inputs) {
      if (in == dx) {
        ++uses;
        add = n.get();
      }
    }
  }
  if (uses != 1 || !IsAdd(add)) return false;
  Value* o = add->inputs[0] == dx ? add->inputs[1] : add->inputs[0];
  if (o->shape != dx->shape || o->dtype != dx->dtype) return false;
  if (add->phase != bwd->phase || add->stream != bwd->stream) return false;
  const int ib = g.NodeIndex(bwd), ia = g.NodeIndex(add);
  const std::vector<Value*> others(bwd->outputs.begin() + 1, bwd->outputs.end());  // dw (, db)
  bool at_add = !ReadBetween(g, ib, ia, others) && !OverwrittenBetween(g, ib, ia, bwd->inputs) &&
                DepsAllow(g, bwd, add, ia);
  if (!at_add && !(DefinedBefore(g, o, ib) && DepsAllow(g, bwd, add, ib))) return false;
  Value* sum = add->outputs[0];
  bwd->inputs.push_back(o);
  bwd->outputs[0] = sum;
  sum->producer = bwd;
  sum->producer_index = 0;
  add->outputs = {dx};  // dx (read by the add only) goes away with it
  dx->producer = add;
  dx->producer_index = 0;
  MergeDeps(g, bwd, add);
  if (at_add) g.MoveNode(bwd, add);
  g.RemoveNode(add);
  return true;
}

}  // namespace

StatusOr<bool> FuseAddNorm::Run(ir::Graph& g) {
  std::vector<Node*> norms, bwds;
  for (const auto& n : g.nodes()) {
    if (FamilyOf(n.get(), false)) norms.push_back(n.get());
    if (FamilyOf(n.get(), true)) bwds.push_back(n.get());
  }
  bool changed = false;
  for (Node* n : norms) changed |= FuseForward(g, n);
  for (Node* n : bwds) changed |= FuseBackward(g, n);
  return changed;
}

}  // namespace zt::passes
