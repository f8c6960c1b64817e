// Builder: how models, autodiff and passes add nodes to a Graph. Emit looks up the op, fills
// default attributes, runs the op's shape/dtype rule and names the outputs ("<scope>.<name>").
// Invariant: every node a Builder adds passes the op's own type rule at the time it is added.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "ir/op_registry.h"

namespace zt::ir {

class Builder {
 public:
  explicit Builder(Graph* graph) : graph_(graph) {}

  Graph& graph() { return *graph_; }

  Value* Input(const std::string& name, DType dtype, Shape shape);
  Value* Param(const std::string& name, DType dtype, Shape shape);
  Value* State(const std::string& name, DType dtype, Shape shape, MemCategory category);

  // Adds a node. `name` (optional) names the first output; by default the op name is used.
  // Either way the current scope is prefixed and the name made unique.
  StatusOr<std::vector<Value*>> TryEmit(std::string_view op, std::vector<Value*> inputs,
                                        AttrMap attrs = {}, const std::string& name = "");
  // As TryEmit, but a type error is a bug in the caller: CHECK-fails naming op and inputs.
  std::vector<Value*> Emit(std::string_view op, std::vector<Value*> inputs, AttrMap attrs = {},
                           const std::string& name = "");
  // Emit for ops with one output (or when only the first output is wanted).
  Value* Emit1(std::string_view op, std::vector<Value*> inputs, AttrMap attrs = {},
               const std::string& name = "");

  Phase phase() const { return phase_; }
  void set_phase(Phase p) { phase_ = p; }
  int stream() const { return stream_; }
  void set_stream(int s) { stream_ = s; }
  // New nodes go before this node (nullptr: at the end).
  void set_insert_before(Node* n) { insert_before_ = n; }
  Node* last_node() const { return last_node_; }

  // Name scope: while alive, generated names start with "<outer>.<name>".
  class Scope {
   public:
    Scope(Builder& b, const std::string& name);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Builder& b_;
    std::string saved_;
  };
  std::string ScopedName(const std::string& name) const;

 private:
  Graph* graph_;
  std::string scope_;
  Phase phase_ = Phase::kForward;
  int stream_ = 0;
  Node* insert_before_ = nullptr;
  Node* last_node_ = nullptr;
};

}  // namespace zt::ir
