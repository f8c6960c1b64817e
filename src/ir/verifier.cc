// The IR verifier.
#include "ir/verifier.h"

#include <set>

#include "ir/op_registry.h"

namespace zt::ir {
namespace {

constexpr int kNumStreams = 3;  // compute, comm, copy (backend/backend.h StreamKind)

std::string TypeOf(const Value* v) { return std::string(DTypeName(v->dtype)) + v->shape.ToString(); }

// Follows view aliases (not in-place ones) back to the value whose memory v shows.
const Value* ViewRoot(const Value* v) {
  while (v->producer != nullptr) {
    int input = -1;
    const Alias* a = FindAlias(*v->producer, v->producer_index, &input);
    if (a == nullptr || a->kind != AliasKind::kView) break;
    v = v->producer->inputs[input];
  }
  return v;
}

}  // namespace

Status Verify(const Graph& g) {
  std::set<const Value*> defined;  // values available at the current point of the schedule
  std::set<std::string> names;
  for (const auto& v : g.values()) {
    if (!names.insert(v->name).second) return InvalidArgument("value name %" + v->name + " is used twice");
    if (v->persistent()) {
      if (v->producer != nullptr) {
        return InvalidArgument(std::string(ValueKindName(v->kind)) + " %" + v->name +
                               " must not be defined by a node");
      }
      defined.insert(v.get());
    } else if (v->producer == nullptr || !g.Contains(v->producer)) {
      return InvalidArgument("%" + v->name + " is an intermediate with no defining node in the graph");
    }
  }

  std::set<const Node*> seen_nodes;
  std::set<const Value*> consumed;  // inputs overwritten in place by an earlier node
  for (const auto& node_ptr : g.nodes()) {
    const Node* n = node_ptr.get();
    std::string where = g.Describe(n);
    if (n->op == nullptr) return InvalidArgument(where + ": has no op");
    const OpDef& op = *n->op;
    int nin = static_cast<int>(n->inputs.size());
    if (nin < op.min_inputs || (op.max_inputs >= 0 && nin > op.max_inputs)) {
      return InvalidArgument(where + ": has " + std::to_string(nin) + " inputs, op '" + op.name +
                             "' takes " + std::to_string(op.min_inputs) +
                             (op.max_inputs < 0 ? " or more" : " to " + std::to_string(op.max_inputs)));
    }
    for (int i = 0; i < nin; ++i) {
      const Value* in = n->inputs[i];
      if (in == nullptr) return InvalidArgument(where + ": input " + std::to_string(i) + " is null");
      if (!g.Contains(in)) {
        return InvalidArgument(where + ": input " + std::to_string(i) + " %" + in->name +
                               " is not in the graph (a dangling use of a removed value)");
      }
      if (!defined.count(in)) {
        return InvalidArgument(where + ": uses %" + in->name + " before its definition by " +
                               g.Describe(in->producer));
      }
      if (consumed.count(in)) {
        return InvalidArgument(where + ": uses %" + in->name +
                               " after an earlier node overwrote it in place");
      }
    }
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      const Value* out = n->outputs[i];
      if (out->producer != n || out->producer_index != static_cast<int>(i)) {
        return InvalidArgument(where + ": output %" + out->name + " is defined by another node too");
      }
      if (!defined.insert(out).second) {
        return InvalidArgument(where + ": output %" + out->name + " is already defined");
      }
    }
    AttrMap attrs = n->attrs;
    Status st = NormalizeAttrs(op, attrs);
    if (!st.ok()) return st.WithContext(where);
    if (!(attrs == n->attrs)) {
      for (const AttrSpec& a : op.attrs) {
        const AttrValue* v = n->attrs.Find(a.name);
        if (v == nullptr) return InvalidArgument(where + ": attribute '" + a.name + "' is missing");
        // NormalizeAttrs accepts an int for a float (converting it); a node must hold the float.
        if (TypeOf(*v) != a.type) {
          return InvalidArgument(where + ": attribute '" + a.name + "' of op '" + op.name + "' is stored as " +
                                 AttrTypeName(TypeOf(*v)) + ", must be " + AttrTypeName(a.type));
        }
      }
    }
    auto inferred = op.infer(InputTypes(*n), n->attrs);
    if (!inferred.ok()) {
      std::string ins;
      for (const Value* in : n->inputs) ins += (ins.empty() ? "%" : ", %") + in->name + ": " + TypeOf(in);
      return Status(inferred.status().code(), where + ": " + inferred.status().message() + " (inputs " + ins + ")");
    }
    if (inferred->size() != n->outputs.size()) {
      return InvalidArgument(where + ": has " + std::to_string(n->outputs.size()) + " outputs, op '" +
                             op.name + "' defines " + std::to_string(inferred->size()));
    }
    for (size_t i = 0; i < inferred->size(); ++i) {
      const Value* out = n->outputs[i];
      const TypeSpec& t = (*inferred)[i];
      if (t.dtype != out->dtype || t.shape != out->shape) {
        return InvalidArgument(where + ": output %" + out->name + " is declared " + TypeOf(out) +
                               " but op '" + op.name + "' gives " + TypeToString(t));
      }
    }
    if (n->stream < 0 || n->stream >= kNumStreams) {
      return InvalidArgument(where + ": stream " + std::to_string(n->stream) +
                             " does not exist (0 compute, 1 comm, 2 copy)");
    }
    for (const Node* d : n->deps) {
      if (!g.Contains(d)) return InvalidArgument(where + ": depends on a node that is not in the graph");
      if (!seen_nodes.count(d)) {
        return InvalidArgument(where + ": depends on " + g.Describe(d) + ", which is scheduled after it");
      }
    }
    for (int o = 0; o < static_cast<int>(n->outputs.size()); ++o) {
      int input = -1;
      const Alias* a = FindAlias(*n, o, &input);
      if (a == nullptr || a->kind != AliasKind::kInPlace) continue;
      const Value* in = n->inputs[input];
      const Value* out = n->outputs[o];
      if (in->dtype != out->dtype || in->nbytes() != out->nbytes()) {
        return InvalidArgument(where + ": in-place output %" + out->name + " differs in size from %" + in->name);
      }
      // Overwriting `in` overwrites every view of the same memory defined so far, too.
      const Value* root = ViewRoot(in);
      for (const Value* v : defined) {
        if (v->producer == n) continue;
        if (ViewRoot(v) == root) consumed.insert(v);
      }
    }
    seen_nodes.insert(n);
  }

  for (const Value* v : g.outputs()) {
    if (v == nullptr || !g.Contains(v)) return InvalidArgument("a graph output is not in the graph");
    if (consumed.count(v)) return InvalidArgument("graph output %" + v->name + " is overwritten in place");
  }
  if (g.loss()) {
    const Value* l = g.loss();
    if (!g.Contains(l)) return InvalidArgument("the loss is not in the graph");
    if (l->shape.numel() != 1 || !IsFloating(l->dtype)) {
      return InvalidArgument("loss %" + l->name + " must be a floating scalar, is " + TypeOf(l));
    }
  }
  for (const auto& [p, gr] : g.grads()) {
    if (!g.Contains(p) || !g.Contains(gr)) return InvalidArgument("a gradient entry names a value not in the graph");
    if (p->kind != ValueKind::kParam) return InvalidArgument("gradient of %" + p->name + ", which is not a param");
    if (p->shape != gr->shape || p->dtype != gr->dtype) {
      return InvalidArgument("gradient %" + gr->name + " " + TypeOf(gr) + " does not match param %" +
                             p->name + " " + TypeOf(p));
    }
  }
  return OkStatus();
}

}  // namespace zt::ir
