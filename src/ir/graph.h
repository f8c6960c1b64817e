// Graph: the static program of one training step. Values are typed SSA names; Nodes apply a
// registered op to input Values and define output Values. The order of nodes_ is the schedule.
//
// Invariants (checked by Verify, see verifier.h):
//  - every intermediate Value is defined by exactly one Node, before any use in the order;
//  - inputs, params and states are defined by no Node and live for the whole step;
//  - node outputs match what the op's shape/dtype rule infers from the inputs and attributes;
//  - names are unique; a removed Value is never used.
// The graph owns its Values and Nodes; pointers stay valid until the Graph is destroyed (removed
// ones move to a graveyard so a dangling use can still be reported by name).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mem_category.h"
#include "core/shape.h"
#include "ir/attr.h"

namespace zt::ir {

struct OpDef;
class Node;

// Input: fed from outside every step (tokens, targets, learning-rate scalars).
// Param: a trainable parameter, persistent across steps.
// State: persistent non-trainable state (optimizer moments, gradient accumulators).
// Intermediate: defined by a node within the step.
enum class ValueKind { kInput, kParam, kState, kIntermediate };
const char* ValueKindName(ValueKind k);

enum class Phase { kForward, kBackward, kOptimizer };
const char* PhaseName(Phase p);
std::optional<Phase> ParsePhase(std::string_view s);

MemCategory DefaultCategory(ValueKind k);

class Value {
 public:
  int id = -1;  // unique within the graph, never reused
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  ValueKind kind = ValueKind::kIntermediate;
  MemCategory category = MemCategory::kActivations;
  Node* producer = nullptr;  // set for intermediates
  int producer_index = -1;   // which output of producer
  // Byte offset in the arena of `category`, set by the memory planner (aliases share their
  // root's offset and arena).
  std::optional<int64_t> offset;

  size_t nbytes() const { return static_cast<size_t>(shape.numel()) * DTypeSize(dtype); }
  bool persistent() const { return kind != ValueKind::kIntermediate; }
};

class Node {
 public:
  int id = -1;  // unique within the graph, never reused
  const OpDef* op = nullptr;
  std::vector<Value*> inputs;
  std::vector<Value*> outputs;
  AttrMap attrs;
  Phase phase = Phase::kForward;
  int stream = 0;            // StreamKind index: 0 compute, 1 comm, 2 copy
  std::vector<Node*> deps;   // extra ordering edges: these run (complete) before this node
};

class Graph {
 public:
  explicit Graph(std::string name = "graph") : name_(std::move(name)) {}
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  const std::string& name() const { return name_; }

  // Non-intermediate values. Names must be unique (CHECK); use UniqueName for generated ones.
  Value* AddInput(const std::string& name, DType dtype, Shape shape);
  Value* AddParam(const std::string& name, DType dtype, Shape shape);
  Value* AddState(const std::string& name, DType dtype, Shape shape, MemCategory category);

  // Appends (or inserts before `before`) a node whose outputs get the given names and types.
  // No inference or checking here: Builder infers types; Verify checks the result.
  struct OutputSpec {
    std::string name;
    DType dtype;
    Shape shape;
  };
  Node* AddNode(const OpDef* op, std::vector<Value*> inputs, AttrMap attrs,
                const std::vector<OutputSpec>& outputs, Node* before = nullptr);
  // Removes a node and its outputs (which must be unused; Verify reports it otherwise).
  void RemoveNode(Node* node);
  // Removes an input, param or state (which must be unused; Verify reports it otherwise).
  void RemovePersistent(Value* v);
  // Moves `node` to just before `before` (nullptr: to the end).
  void MoveNode(Node* node, Node* before);
  // Replaces every use of `from` (node inputs, outputs list, loss, grads) by `to`.
  void ReplaceAllUses(Value* from, Value* to);

  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  const std::vector<std::unique_ptr<Value>>& values() const { return values_; }
  int NodeIndex(const Node* node) const;  // position in the schedule, -1 if not present
  bool Contains(const Value* v) const;
  bool Contains(const Node* n) const { return NodeIndex(n) >= 0; }
  Value* FindValue(const std::string& name) const;
  // `hint` if unused, else hint.1, hint.2, ...
  std::string UniqueName(const std::string& hint) const;

  // Users of each value, in schedule order.
  std::map<const Value*, std::vector<Node*>> Uses() const;

  // Results the caller reads after a step (kept alive by the planner and by DCE).
  std::vector<Value*>& outputs() { return outputs_; }
  const std::vector<Value*>& outputs() const { return outputs_; }
  Value* loss() const { return loss_; }
  void set_loss(Value* v) { loss_ = v; }
  // Parameter -> its gradient value, in parameter order (set by autodiff).
  std::vector<std::pair<Value*, Value*>>& grads() { return grads_; }
  const std::vector<std::pair<Value*, Value*>>& grads() const { return grads_; }
  Value* GradOf(const Value* param) const;

  // "node #5 'layernorm' -> %h.0.ln_1" : how errors name a node.
  std::string Describe(const Node* node) const;

 private:
  Value* NewValue(const std::string& name, DType dtype, Shape shape, ValueKind kind);

  std::string name_;
  std::vector<std::unique_ptr<Value>> values_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<Value>> removed_values_;
  std::vector<std::unique_ptr<Node>> removed_nodes_;
  std::map<std::string, Value*> by_name_;
  std::vector<Value*> outputs_;
  Value* loss_ = nullptr;
  std::vector<std::pair<Value*, Value*>> grads_;
  int next_value_id_ = 0;
  int next_node_id_ = 0;
};

}  // namespace zt::ir
