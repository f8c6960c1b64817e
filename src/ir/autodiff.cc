// Reverse-mode autodiff over the IR.
#include "ir/autodiff.h"

#include <map>
#include <set>

#include "ir/builder.h"
#include "ir/op_registry.h"

namespace zt::ir {

std::vector<Value*> ParamsOf(const Graph& g) {
  std::vector<Value*> out;
  for (auto& v : g.values())
    if (v->kind == ValueKind::kParam) out.push_back(v.get());
  return out;
}

Status AppendBackward(Graph& g, Value* loss, const std::vector<Value*>& params,
                      const AutodiffOptions& options) {
  if (loss == nullptr || !g.Contains(loss)) return InvalidArgument("autodiff: the loss is not in the graph");
  if (loss->shape.numel() != 1 || !IsFloating(loss->dtype)) {
    return InvalidArgument("autodiff: loss %" + loss->name + " must be a floating scalar");
  }
  for (Value* p : params) {
    if (p->kind != ValueKind::kParam) return InvalidArgument("autodiff: %" + p->name + " is not a param");
  }
  if (!g.grads().empty()) return FailedPrecondition("autodiff: the graph already has a backward pass");

  // Forward nodes, in schedule order (the backward walks them in reverse).
  std::vector<Node*> forward;
  for (auto& n : g.nodes()) forward.push_back(n.get());

  // Values that depend on a parameter.
  std::set<const Value*> depends_on_param(params.begin(), params.end());
  for (Node* n : forward) {
    bool any = false;
    for (int i = 0; i < static_cast<int>(n->inputs.size()); ++i)
      if (!n->op->IsNondiff(i) && depends_on_param.count(n->inputs[i])) any = true;
    if (any)
      for (Value* o : n->outputs) depends_on_param.insert(o);
  }

  Builder b(&g);
  b.set_phase(Phase::kBackward);
  Builder::Scope scope(b, "grad");

  std::map<const Value*, Value*> grad;  // accumulated gradient of each value
  auto accumulate = [&](Value* v, Value* dv) {
    auto it = grad.find(v);
    if (it == grad.end()) {
      grad[v] = dv;
    } else {
      it->second = b.Emit1("add", {it->second, dv}, {}, v->name + ".acc");
    }
  };

  Value* seed = options.seed;
  if (seed == nullptr) {
    seed = b.Emit1("fill", {}, {{"dtype", loss->dtype}, {"shape", loss->shape.dims()}, {"value", 1.0}},
                   loss->name + ".seed");
  } else if (seed->dtype != loss->dtype || seed->shape != loss->shape) {
    return InvalidArgument("autodiff: seed %" + seed->name + " must have the loss's type");
  }
  grad[loss] = seed;

  for (auto it = forward.rbegin(); it != forward.rend(); ++it) {
    Node* n = *it;
    std::vector<Value*> dout;
    bool any_dout = false;
    for (Value* o : n->outputs) {
      auto gi = grad.find(o);
      dout.push_back(gi == grad.end() ? nullptr : gi->second);
      any_dout |= gi != grad.end();
    }
    if (!any_dout) continue;
    std::vector<bool> need;
    bool any_need = false;
    for (int i = 0; i < static_cast<int>(n->inputs.size()); ++i) {
      // Integer values never carry gradients, whether or not the op declares them nondiff.
      bool nd = !n->op->IsNondiff(i) && IsFloating(n->inputs[i]->dtype) &&
                depends_on_param.count(n->inputs[i]) > 0;
      need.push_back(nd);
      any_need |= nd;
    }
    if (!any_need) continue;
    if (!n->op->grad) {
      return InvalidArgument("autodiff: " + g.Describe(n) + " has no backward rule, but a parameter's gradient flows through it");
    }
    Builder::Scope node_scope(b, n->outputs.empty() ? n->op->name : n->outputs[0]->name);
    GradContext ctx{b, *n, dout, need};
    std::vector<Value*> dins = n->op->grad(ctx);
    if (dins.size() != n->inputs.size()) {
      return Internal("autodiff: backward rule of '" + n->op->name + "' returned " +
                      std::to_string(dins.size()) + " gradients for " + std::to_string(n->inputs.size()) + " inputs");
    }
    for (size_t i = 0; i < dins.size(); ++i) {
      if (!need[i] || dins[i] == nullptr) continue;
      Value* in = n->inputs[i];
      if (dins[i]->shape != in->shape || dins[i]->dtype != in->dtype) {
        return Internal("autodiff: backward rule of " + g.Describe(n) + " gave gradient %" + dins[i]->name +
                        " of the wrong type for input %" + in->name);
      }
      accumulate(in, dins[i]);
    }
  }

  for (Value* p : params) {
    auto gi = grad.find(p);
    Value* gv = gi != grad.end()
                    ? gi->second
                    : b.Emit1("fill", {}, {{"dtype", p->dtype}, {"shape", p->shape.dims()}, {"value", 0.0}},
                              p->name + ".zero_grad");
    if (gv->producer != nullptr) gv->category = MemCategory::kGradients;
    g.grads().push_back({p, gv});
  }
  g.set_loss(loss);
  return OkStatus();
}

}  // namespace zt::ir
