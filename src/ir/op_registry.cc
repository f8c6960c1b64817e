// Op registry and op-schema helpers.
#include "ir/op_registry.h"

#include <algorithm>

namespace zt::ir {

std::string TypeToString(const TypeSpec& t) { return std::string(DTypeName(t.dtype)) + t.shape.ToString(); }

bool OpDef::IsNondiff(int input) const {
  return std::find(nondiff_inputs.begin(), nondiff_inputs.end(), input) != nondiff_inputs.end();
}

const AttrSpec* OpDef::FindAttr(std::string_view attr) const {
  for (const AttrSpec& a : attrs)
    if (a.name == attr) return &a;
  return nullptr;
}

Cost OpDef::ComputeCost(const NodeSig& sig) const {
  if (cost) return cost(sig);
  Cost c;
  for (const TypeSpec& t : sig.inputs) c.bytes_read += static_cast<double>(t.nbytes());
  for (const TypeSpec& t : sig.outputs) c.bytes_written += static_cast<double>(t.nbytes());
  return c;
}

size_t OpDef::ComputeWorkspace(const NodeSig& sig) const { return workspace ? workspace(sig) : 0; }

OpRegistry& OpRegistry::Global() {
  static OpRegistry* r = [] {
    auto* reg = new OpRegistry();
    RegisterAllOps(*reg);
    return reg;
  }();
  return *r;
}

void OpRegistry::Register(OpDef def) {
  ZT_CHECK(!def.name.empty());
  ZT_CHECK(Find(def.name) == nullptr) << "op '" << def.name << "' registered twice";
  ZT_CHECK(def.infer) << "op '" << def.name << "' has no shape rule";
  ZT_CHECK(def.max_inputs == -1 || def.max_inputs >= def.min_inputs) << def.name;
  ops_.push_back(std::make_unique<OpDef>(std::move(def)));
}

const OpDef* OpRegistry::Find(std::string_view name) const {
  for (auto& op : ops_)
    if (op->name == name) return op.get();
  return nullptr;
}

std::vector<const OpDef*> OpRegistry::All() const {
  std::vector<const OpDef*> out;
  for (auto& op : ops_) out.push_back(op.get());
  return out;
}

const OpDef* GetOp(std::string_view name) {
  const OpDef* op = OpRegistry::Global().Find(name);
  ZT_CHECK(op != nullptr) << "unknown op '" << name << "'";
  return op;
}

Status NormalizeAttrs(const OpDef& op, AttrMap& attrs) {
  for (const auto& [name, value] : attrs.items()) {
    const AttrSpec* spec = op.FindAttr(name);
    if (spec == nullptr) {
      return InvalidArgument("op '" + op.name + "' has no attribute '" + name + "'");
    }
    if (TypeOf(value) != spec->type) {
      // Integers are accepted where floats are declared (1 for 1.0).
      if (spec->type == AttrType::kFloat && TypeOf(value) == AttrType::kInt) {
        attrs.Set(name, static_cast<double>(std::get<int64_t>(value)));
        continue;
      }
      return InvalidArgument("attribute '" + name + "' of op '" + op.name + "' must be " +
                             AttrTypeName(spec->type) + ", got " + AttrTypeName(TypeOf(value)));
    }
  }
  for (const AttrSpec& spec : op.attrs) {
    if (attrs.Has(spec.name)) continue;
    if (!spec.default_value) {
      return InvalidArgument("op '" + op.name + "' needs attribute '" + spec.name + "' (" +
                             AttrTypeName(spec.type) + ")");
    }
    attrs.Set(spec.name, *spec.default_value);
  }
  return OkStatus();
}

std::vector<TypeSpec> InputTypes(const Node& n) {
  std::vector<TypeSpec> t;
  for (const Value* v : n.inputs) t.push_back({v->dtype, v->shape});
  return t;
}

std::vector<TypeSpec> OutputTypes(const Node& n) {
  std::vector<TypeSpec> t;
  for (const Value* v : n.outputs) t.push_back({v->dtype, v->shape});
  return t;
}

const Alias* FindAlias(const Node& n, int output, int* input) {
  for (const Alias& a : n.op->aliases) {
    int in = a.output == kEveryOutput ? output + a.input : (a.output == output ? a.input : -1);
    if (in >= 0 && in < static_cast<int>(n.inputs.size())) {
      *input = in;
      return &a;
    }
  }
  return nullptr;
}

AliasTarget ResolveAlias(const Value* v) {
  int64_t offset = 0;
  while (v->producer != nullptr) {
    int input = -1;
    const Alias* found = FindAlias(*v->producer, v->producer_index, &input);
    if (found == nullptr) break;
    if (found->byte_offset) offset += found->byte_offset(*v->producer);
    v = v->producer->inputs[input];
  }
  return {v, offset};
}

Cost NodeCost(const Node& n) {
  auto in = InputTypes(n);
  auto out = OutputTypes(n);
  return n.op->ComputeCost(NodeSig{in, out, n.attrs});
}

size_t NodeWorkspace(const Node& n, Target target) {
  auto in = InputTypes(n);
  auto out = OutputTypes(n);
  return n.op->ComputeWorkspace(NodeSig{in, out, n.attrs, target});
}

}  // namespace zt::ir
