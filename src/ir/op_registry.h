// The op registry: every op ztrain knows, each with typed attributes, a shape/dtype rule, a
// backward rule, a cost (flops, bytes read and written) and its workspace need. Op families
// register themselves in ir/ops/<family>.cc (listed once in ir/ops/all_ops.cc).
// Invariant: a registered op's infer rule rejects (with a message naming the offending input)
// every input combination its kernels cannot run.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "ir/attr.h"
#include "ir/graph.h"

namespace zt::ir {

class Builder;

struct TypeSpec {
  DType dtype = DType::kF32;
  Shape shape;
  size_t nbytes() const { return static_cast<size_t>(shape.numel()) * DTypeSize(dtype); }
  bool operator==(const TypeSpec& o) const { return dtype == o.dtype && shape == o.shape; }
};
std::string TypeToString(const TypeSpec& t);  // "f32[2,3]"

// What cost and workspace rules see of a node.
// The device a program is planned for. Workspace rules may differ per target (a CUDA kernel may
// need less scratch memory than the CPU reference, or another layout); the default is the CPU's.
enum class Target { kCpu, kCuda };

struct NodeSig {
  std::span<const TypeSpec> inputs;
  std::span<const TypeSpec> outputs;
  const AttrMap& attrs;
  Target target = Target::kCpu;
};

struct Cost {
  double flops = 0;
  double bytes_read = 0;
  double bytes_written = 0;
};

struct AttrSpec {
  std::string name;
  AttrType type;
  std::optional<AttrValue> default_value;  // nullopt: the attribute is required
};

// Context of a backward rule: emit nodes with `b` (already in the backward phase) and return one
// gradient per forward input (nullptr where none is needed or none flows).
struct GradContext {
  Builder& b;
  const Node& node;
  std::vector<Value*> dout;  // gradient of each forward output; nullptr: no gradient flows
  std::vector<bool> need;    // whether each forward input needs a gradient
  Value* in(int i) const { return node.inputs[i]; }
  Value* out(int i) const { return node.outputs[i]; }
  const AttrMap& attrs() const { return node.attrs; }
};

using InferFn = std::function<StatusOr<std::vector<TypeSpec>>(std::span<const TypeSpec> inputs,
                                                              const AttrMap& attrs)>;
using GradFn = std::function<std::vector<Value*>(GradContext&)>;
using CostFn = std::function<Cost(const NodeSig&)>;
using WorkspaceFn = std::function<size_t(const NodeSig&)>;

// kView: the output is the input's memory seen with another shape; both stay readable.
// kInPlace: the output overwrites the input's memory; the input must not be used afterwards.
enum class AliasKind { kView, kInPlace };
inline constexpr int kEveryOutput = -1;
struct Alias {
  int output;  // kEveryOutput: every output o aliases input o + `input` (a shift)
  int input;
  AliasKind kind;
  // Where the output starts within the input, in bytes (empty: at its start). A view of a slice.
  std::function<int64_t(const Node& n)> byte_offset = nullptr;
};

// The value whose memory v uses (v itself unless v is an alias) and where v starts in it.
struct AliasTarget {
  const Value* root;
  int64_t byte_offset;
};
AliasTarget ResolveAlias(const Value* v);
// The alias rule of `n`'s output `output` and the input it aliases, or nullptr (rules naming an
// input the node does not have do not apply).
const Alias* FindAlias(const Node& n, int output, int* input);

struct OpDef {
  std::string name;
  std::string doc;
  std::vector<std::string> input_names;   // for messages; the last may repeat if variadic
  int min_inputs = 0;
  int max_inputs = 0;                     // -1: variadic
  std::vector<std::string> output_names;  // suffixes for generated value names ("" = none)
  std::vector<AttrSpec> attrs;
  InferFn infer;
  GradFn grad;                            // empty: not differentiable
  std::vector<int> nondiff_inputs;        // inputs that never receive a gradient (e.g. token ids)
  CostFn cost;                            // empty: 0 flops, bytes = sizes of inputs and outputs
  WorkspaceFn workspace;                  // empty: no workspace
  std::vector<Alias> aliases;             // those naming an absent optional input do not apply
  bool side_effects = false;              // never removed by dead-code elimination

  bool IsNondiff(int input) const;
  const AttrSpec* FindAttr(std::string_view attr) const;
  Cost ComputeCost(const NodeSig& sig) const;  // falls back to the default rule
  size_t ComputeWorkspace(const NodeSig& sig) const;
};

class OpRegistry {
 public:
  // The process-wide registry, with every op of ir/ops/ registered on first use.
  static OpRegistry& Global();

  void Register(OpDef def);  // CHECKs the name is new and the definition complete
  const OpDef* Find(std::string_view name) const;
  std::vector<const OpDef*> All() const;

 private:
  std::vector<std::unique_ptr<OpDef>> ops_;
};

// Shorthand: OpRegistry::Global().Find(name), CHECKing it exists.
const OpDef* GetOp(std::string_view name);

// Fills missing attributes with their defaults and checks names and types against the op's
// schema; the error names the attribute.
Status NormalizeAttrs(const OpDef& op, AttrMap& attrs);

// Types of a node's inputs/outputs as TypeSpecs.
std::vector<TypeSpec> InputTypes(const Node& n);
std::vector<TypeSpec> OutputTypes(const Node& n);
Cost NodeCost(const Node& n);
size_t NodeWorkspace(const Node& n, Target target = Target::kCpu);

// Defined in ir/ops/all_ops.cc: registers every op family.
void RegisterAllOps(OpRegistry& r);

}  // namespace zt::ir
