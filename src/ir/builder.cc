// Builder: op lookup, attribute defaults, type inference and naming for new nodes.
#include "ir/builder.h"

namespace zt::ir {

Value* Builder::Input(const std::string& name, DType dtype, Shape shape) {
  return graph_->AddInput(name, dtype, std::move(shape));
}
Value* Builder::Param(const std::string& name, DType dtype, Shape shape) {
  return graph_->AddParam(name, dtype, std::move(shape));
}
Value* Builder::State(const std::string& name, DType dtype, Shape shape, MemCategory category) {
  return graph_->AddState(name, dtype, std::move(shape), category);
}

std::string Builder::ScopedName(const std::string& name) const {
  return scope_.empty() ? name : scope_ + "." + name;
}

StatusOr<std::vector<Value*>> Builder::TryEmit(std::string_view op_name, std::vector<Value*> inputs,
                                               AttrMap attrs, const std::string& name) {
  const OpDef* op = OpRegistry::Global().Find(op_name);
  if (op == nullptr) return InvalidArgument("unknown op '" + std::string(op_name) + "'");
  int n = static_cast<int>(inputs.size());
  if (n < op->min_inputs || (op->max_inputs >= 0 && n > op->max_inputs)) {
    return InvalidArgument("op '" + op->name + "' takes " + std::to_string(op->min_inputs) +
                           (op->max_inputs == op->min_inputs
                                ? ""
                                : ".." + (op->max_inputs < 0 ? std::string("n")
                                                             : std::to_string(op->max_inputs))) +
                           " inputs, got " + std::to_string(n));
  }
  for (Value* v : inputs) {
    if (v == nullptr) return InvalidArgument("op '" + op->name + "' given a null input");
  }
  ZT_RETURN_IF_ERROR(NormalizeAttrs(*op, attrs));
  std::vector<TypeSpec> in_types;
  for (Value* v : inputs) in_types.push_back({v->dtype, v->shape});
  auto out_types = op->infer(in_types, attrs);
  if (!out_types.ok()) {
    std::string desc = "op '" + op->name + "'(";
    for (size_t i = 0; i < inputs.size(); ++i)
      desc += (i ? ", %" : "%") + inputs[i]->name + ": " + TypeToString(in_types[i]);
    return out_types.status().WithContext(desc + ")");
  }
  std::string base = graph_->UniqueName(ScopedName(name.empty() ? op->name : name));
  std::vector<Graph::OutputSpec> outs;
  for (size_t i = 0; i < out_types->size(); ++i) {
    std::string suffix;
    if (i > 0) {
      suffix = i < op->output_names.size() && !op->output_names[i].empty()
                   ? op->output_names[i]
                   : std::to_string(i);
    }
    std::string vname = i == 0 ? base : graph_->UniqueName(base + "." + suffix);
    outs.push_back({vname, (*out_types)[i].dtype, (*out_types)[i].shape});
  }
  Node* node = graph_->AddNode(op, std::move(inputs), std::move(attrs), outs, insert_before_);
  node->phase = phase_;
  node->stream = stream_;
  last_node_ = node;
  return node->outputs;
}

std::vector<Value*> Builder::Emit(std::string_view op, std::vector<Value*> inputs, AttrMap attrs,
                                  const std::string& name) {
  auto r = TryEmit(op, std::move(inputs), std::move(attrs), name);
  ZT_CHECK(r.ok()) << r.status().ToString();
  return *r;
}

Value* Builder::Emit1(std::string_view op, std::vector<Value*> inputs, AttrMap attrs,
                      const std::string& name) {
  return Emit(op, std::move(inputs), std::move(attrs), name)[0];
}

Builder::Scope::Scope(Builder& b, const std::string& name) : b_(b), saved_(b.scope_) {
  b_.scope_ = b_.ScopedName(name);
}
Builder::Scope::~Scope() { b_.scope_ = saved_; }

}  // namespace zt::ir
