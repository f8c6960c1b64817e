// FuseMatmulEpilogue (see fuse_matmul_epilogue.h): find a candidate, check it, replace its nodes by
// one fused node; repeat until no candidate of any pattern is left. The checks:
//   - the fused op's shape rule, run on the candidate's inputs, gives exactly the types of the
//     values the fused outputs replace (so the op's rule alone decides what may be fused);
//   - the replaced nodes share phase and stream; their other outputs are used only among them;
//   - a place: the position of one of the replaced nodes where every input is defined before,
//     every user of a replaced value comes after, every ordering edge of a replaced node points
//     before and every edge onto one comes from after.
#include "passes/fuse_matmul_epilogue.h"

#include <algorithm>
#include <map>
#include <optional>

#include "ir/op_registry.h"
#include "passes/fusion_util.h"

namespace zt::passes {
namespace {

using ir::Node;
using ir::Value;

// Positions and users in the current schedule.
class Schedule {
 public:
  explicit Schedule(const ir::Graph& g) : g_(g), uses_(g.Uses()) {
    for (size_t i = 0; i < g.nodes().size(); ++i) index_[g.nodes()[i].get()] = static_cast<int>(i);
  }
  int Index(const Node* n) const { return index_.at(n); }
  // Index of v's defining node; -1 for inputs, parameters and states.
  int DefIndex(const Value* v) const { return v->producer ? Index(v->producer) : -1; }
  const std::vector<Node*>& Users(const Value* v) const {
    static const std::vector<Node*> kNone;
    auto it = uses_.find(v);
    return it == uses_.end() ? kNone : it->second;
  }
  // Read after the step (graph output, loss or gradient entry).
  bool External(const Value* v) const { return IsStepResult(g_, v); }

 private:
  const ir::Graph& g_;
  std::map<const Node*, int> index_;
  std::map<const Value*, std::vector<Node*>> uses_;
};

// A group of nodes to replace by one node of `op`.
struct Fusion {
  const char* op;
  std::vector<Value*> inputs;
  ir::AttrMap attrs;
  std::vector<Value*> replaced;  // the fused node's output i takes the place of replaced[i]
  std::vector<Node*> group;      // the nodes it replaces
};

bool In(const std::vector<Node*>& group, const Node* n) {
  return std::find(group.begin(), group.end(), n) != group.end();
}

bool Is(const Node* n, const char* op) { return n->op->name == op; }

// Whether the fused node may stand at schedule index p (that of a group node).
bool PlaceableAt(const ir::Graph& g, const Schedule& s, const Fusion& f, int p) {
  for (const Value* in : f.inputs)
    if ((in->producer && In(f.group, in->producer)) || s.DefIndex(in) >= p) return false;
  for (const Value* r : f.replaced)
    for (const Node* user : s.Users(r))
      if (!In(f.group, user) && s.Index(user) <= p) return false;
  for (const Node* n : f.group)
    for (const Node* d : n->deps)
      if (!In(f.group, d) && s.Index(d) >= p) return false;
  for (const auto& n : g.nodes()) {
    if (In(f.group, n.get())) continue;
    for (const Node* d : n->deps)
      if (In(f.group, d) && s.Index(n.get()) <= p) return false;
  }
  return true;
}

// The group node at whose place the fused node can stand (the earliest that works), or nullptr.
Node* Place(const ir::Graph& g, const Schedule& s, const Fusion& f) {
  std::vector<Node*> order = f.group;
  std::sort(order.begin(), order.end(), [&](const Node* x, const Node* y) { return s.Index(x) < s.Index(y); });
  for (Node* n : order)
    if (PlaceableAt(g, s, f, s.Index(n))) return n;
  return nullptr;
}

// Checks `f` (see the file comment); when it holds, replaces its group by the fused node.
bool Apply(ir::Graph& g, const Schedule& s, Fusion f) {
  const ir::OpDef* op = ir::GetOp(f.op);
  if (!ir::NormalizeAttrs(*op, f.attrs).ok()) return false;
  std::vector<ir::TypeSpec> in_types;
  for (const Value* v : f.inputs) in_types.push_back({v->dtype, v->shape});
  auto out_types = op->infer(in_types, f.attrs);
  if (!out_types.ok() || out_types->size() != f.replaced.size()) return false;
  for (size_t i = 0; i < f.replaced.size(); ++i)
    if (!((*out_types)[i] == ir::TypeSpec{f.replaced[i]->dtype, f.replaced[i]->shape})) return false;
  const Node* first = f.group.front();
  for (const Node* n : f.group) {
    if (n->phase != first->phase || n->stream != first->stream) return false;
    for (const Value* o : n->outputs) {
      if (std::find(f.replaced.begin(), f.replaced.end(), o) != f.replaced.end()) continue;
      if (s.External(o)) return false;
      for (const Node* user : s.Users(o))
        if (!In(f.group, user)) return false;
    }
  }
  Node* at = Place(g, s, f);
  if (at == nullptr) return false;

  ReplaceByFusedNode(g, f.group, op, f.inputs, f.attrs, f.replaced, at);
  return true;
}

// u = matmul(a, b[, bias]); h = gelu(u)  ->  h, u = matmul_gelu(a, b[, bias])
std::optional<Fusion> MatchGelu(const Schedule& s, Node* m) {
  if (!Is(m, "matmul")) return std::nullopt;
  Value* u = m->outputs[0];
  for (Node* user : s.Users(u)) {
    if (Is(user, "gelu") && user->inputs[0] == u)
      return Fusion{"matmul_gelu", m->inputs, m->attrs, {user->outputs[0], u}, {m, user}};
  }
  return std::nullopt;
}

// dh = matmul(a, b); du = gelu_bwd(dh, x)  ->  du = matmul_dgelu(a, b, x)   (dh used only there)
std::optional<Fusion> MatchDGelu(const Schedule& s, Node* m) {
  if (!Is(m, "matmul") || m->inputs.size() != 2) return std::nullopt;
  Value* dh = m->outputs[0];
  const std::vector<Node*>& users = s.Users(dh);
  if (users.size() != 1 || s.External(dh)) return std::nullopt;
  Node* gb = users[0];
  if (!Is(gb, "gelu_bwd") || gb->inputs[0] != dh || gb->inputs[1] == dh) return std::nullopt;
  return Fusion{"matmul_dgelu", {m->inputs[0], m->inputs[1], gb->inputs[1]}, m->attrs, {gb->outputs[0]}, {m, gb}};
}

// db = reduce_sum_to(dC, [N]) and dW = matmul(a, b){trans_a, !trans_b} where b (or a) is dC or a
// [rows, N] reshape of it  ->  dW, db = matmul_bgrad(a, b){bias_of}
std::optional<Fusion> MatchBGrad(const Schedule& s, Node* r) {
  if (!Is(r, "reduce_sum_to")) return std::nullopt;
  Value* dc = r->inputs[0];
  if (dc->shape.rank() < 1 || r->attrs.GetInts("shape") != std::vector<int64_t>{dc->shape[-1]}) return std::nullopt;
  const int64_t width = dc->shape[-1];
  std::vector<Value*> forms = {dc};  // dC as the matmul may read it
  for (Node* user : s.Users(dc)) {
    if (Is(user, "reshape") && user->inputs[0] == dc && user->outputs[0]->shape.rank() == 2 &&
        user->outputs[0]->shape[-1] == width)
      forms.push_back(user->outputs[0]);
  }
  for (Value* form : forms) {
    for (Node* w : s.Users(form)) {
      if (!Is(w, "matmul") || w->inputs.size() != 2) continue;
      if (!w->attrs.GetBool("trans_a") || w->attrs.GetBool("trans_b")) continue;
      const char* of = w->inputs[1] == form ? "b" : w->inputs[0] == form ? "a" : nullptr;
      if (of == nullptr) continue;
      ir::AttrMap attrs = w->attrs;
      attrs.Set("bias_of", std::string(of));
      return Fusion{"matmul_bgrad", w->inputs, attrs, {w->outputs[0], r->outputs[0]}, {w, r}};
    }
  }
  return std::nullopt;
}

using Matcher = std::optional<Fusion> (*)(const Schedule&, Node*);

// Applies the first valid fusion `match` finds in schedule order; false when there is none.
bool FuseOne(ir::Graph& g, Matcher match) {
  Schedule s(g);
  std::vector<Node*> nodes;
  for (const auto& n : g.nodes()) nodes.push_back(n.get());
  for (Node* n : nodes) {
    std::optional<Fusion> f = match(s, n);
    if (f && Apply(g, s, std::move(*f))) return true;
  }
  return false;
}

}  // namespace

StatusOr<bool> FuseMatmulEpilogue::Run(ir::Graph& g) {
  bool changed = false;
  std::vector<Matcher> matchers;
  if (o_.gelu) matchers = {static_cast<Matcher>(MatchGelu), static_cast<Matcher>(MatchDGelu)};
  if (o_.bgrad) matchers.push_back(static_cast<Matcher>(MatchBGrad));
  for (Matcher match : matchers) {
    while (FuseOne(g, match)) changed = true;
  }
  return changed;
}

}  // namespace zt::passes
