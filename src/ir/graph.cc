// Graph construction and editing.
#include "ir/graph.h"

#include <algorithm>

#include "core/check.h"
#include "ir/op_registry.h"

namespace zt::ir {

const char* ValueKindName(ValueKind k) {
  switch (k) {
    case ValueKind::kInput: return "input";
    case ValueKind::kParam: return "param";
    case ValueKind::kState: return "state";
    case ValueKind::kIntermediate: return "intermediate";
  }
  return "?";
}

const char* PhaseName(Phase p) {
  switch (p) {
    case Phase::kForward: return "forward";
    case Phase::kBackward: return "backward";
    case Phase::kOptimizer: return "optimizer";
  }
  return "?";
}

std::optional<Phase> ParsePhase(std::string_view s) {
  for (Phase p : {Phase::kForward, Phase::kBackward, Phase::kOptimizer})
    if (s == PhaseName(p)) return p;
  return std::nullopt;
}

MemCategory DefaultCategory(ValueKind k) {
  switch (k) {
    case ValueKind::kParam: return MemCategory::kParameters;
    case ValueKind::kState: return MemCategory::kOptimizerState;
    case ValueKind::kInput:
    case ValueKind::kIntermediate: return MemCategory::kActivations;
  }
  return MemCategory::kActivations;
}

Value* Graph::NewValue(const std::string& name, DType dtype, Shape shape, ValueKind kind) {
  ZT_CHECK(!name.empty()) << "value without a name";
  ZT_CHECK(by_name_.count(name) == 0) << "duplicate value name %" << name;
  auto v = std::make_unique<Value>();
  v->id = next_value_id_++;
  v->name = name;
  v->dtype = dtype;
  v->shape = std::move(shape);
  v->kind = kind;
  v->category = DefaultCategory(kind);
  Value* raw = v.get();
  by_name_[name] = raw;
  values_.push_back(std::move(v));
  return raw;
}

Value* Graph::AddInput(const std::string& name, DType dtype, Shape shape) {
  return NewValue(name, dtype, std::move(shape), ValueKind::kInput);
}
Value* Graph::AddParam(const std::string& name, DType dtype, Shape shape) {
  return NewValue(name, dtype, std::move(shape), ValueKind::kParam);
}
Value* Graph::AddState(const std::string& name, DType dtype, Shape shape, MemCategory category) {
  Value* v = NewValue(name, dtype, std::move(shape), ValueKind::kState);
  v->category = category;
  return v;
}

Node* Graph::AddNode(const OpDef* op, std::vector<Value*> inputs, AttrMap attrs,
                     const std::vector<OutputSpec>& outputs, Node* before) {
  auto n = std::make_unique<Node>();
  n->id = next_node_id_++;
  n->op = op;
  n->inputs = std::move(inputs);
  n->attrs = std::move(attrs);
  Node* raw = n.get();
  for (size_t i = 0; i < outputs.size(); ++i) {
    Value* v = NewValue(outputs[i].name, outputs[i].dtype, outputs[i].shape, ValueKind::kIntermediate);
    v->producer = raw;
    v->producer_index = static_cast<int>(i);
    raw->outputs.push_back(v);
  }
  if (before == nullptr) {
    nodes_.push_back(std::move(n));
  } else {
    int idx = NodeIndex(before);
    ZT_CHECK_GE(idx, 0) << "insertion point not in graph";
    nodes_.insert(nodes_.begin() + idx, std::move(n));
  }
  return raw;
}

void Graph::RemoveNode(Node* node) {
  int idx = NodeIndex(node);
  ZT_CHECK_GE(idx, 0) << "removing a node that is not in the graph";
  for (Value* out : node->outputs) {
    auto it = std::find_if(values_.begin(), values_.end(), [&](auto& p) { return p.get() == out; });
    ZT_CHECK(it != values_.end());
    by_name_.erase(out->name);
    removed_values_.push_back(std::move(*it));
    values_.erase(it);
  }
  for (auto& other : nodes_) {
    auto& d = other->deps;
    d.erase(std::remove(d.begin(), d.end(), node), d.end());
  }
  removed_nodes_.push_back(std::move(nodes_[idx]));
  nodes_.erase(nodes_.begin() + idx);
}

void Graph::RemovePersistent(Value* v) {
  ZT_CHECK(v->persistent()) << "%" << v->name << " is defined by a node; remove the node instead";
  auto it = std::find_if(values_.begin(), values_.end(), [&](auto& p) { return p.get() == v; });
  ZT_CHECK(it != values_.end()) << "%" << v->name << " is not in the graph";
  by_name_.erase(v->name);
  removed_values_.push_back(std::move(*it));
  values_.erase(it);
}

void Graph::MoveNode(Node* node, Node* before) {
  int idx = NodeIndex(node);
  ZT_CHECK_GE(idx, 0);
  std::unique_ptr<Node> owned = std::move(nodes_[idx]);
  nodes_.erase(nodes_.begin() + idx);
  if (before == nullptr) {
    nodes_.push_back(std::move(owned));
  } else {
    int b = NodeIndex(before);
    ZT_CHECK_GE(b, 0);
    nodes_.insert(nodes_.begin() + b, std::move(owned));
  }
}

void Graph::ReplaceAllUses(Value* from, Value* to) {
  for (auto& n : nodes_)
    for (Value*& in : n->inputs)
      if (in == from) in = to;
  for (Value*& o : outputs_)
    if (o == from) o = to;
  if (loss_ == from) loss_ = to;
  for (auto& [p, g] : grads_)
    if (g == from) g = to;
}

int Graph::NodeIndex(const Node* node) const {
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].get() == node) return static_cast<int>(i);
  return -1;
}

bool Graph::Contains(const Value* v) const {
  auto it = by_name_.find(v->name);
  return it != by_name_.end() && it->second == v;
}

Value* Graph::FindValue(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::string Graph::UniqueName(const std::string& hint) const {
  if (!by_name_.count(hint)) return hint;
  for (int i = 1;; ++i) {
    std::string s = hint + "." + std::to_string(i);
    if (!by_name_.count(s)) return s;
  }
}

std::map<const Value*, std::vector<Node*>> Graph::Uses() const {
  std::map<const Value*, std::vector<Node*>> uses;
  for (auto& n : nodes_)
    for (Value* in : n->inputs)
      if (uses[in].empty() || uses[in].back() != n.get()) uses[in].push_back(n.get());
  return uses;
}

Value* Graph::GradOf(const Value* param) const {
  for (auto& [p, g] : grads_)
    if (p == param) return g;
  return nullptr;
}

std::string Graph::Describe(const Node* node) const {
  std::string s = "node #" + std::to_string(NodeIndex(node)) + " '" +
                  (node->op ? node->op->name : std::string("<null op>")) + "'";
  if (!node->outputs.empty()) s += " -> %" + node->outputs[0]->name;
  return s;
}

}  // namespace zt::ir
