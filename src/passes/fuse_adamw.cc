// FuseAdamW: one scan of the schedule groups adamw nodes (open groups are closed by the first node
// that conflicts with them), then each group of two or more becomes one adamw_multi node at the
// position of its last member.
#include "passes/fuse_adamw.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <set>
#include <vector>

#include "ir/op_registry.h"
#include "ir/ops/adamw.h"
#include "passes/fusion_util.h"

namespace zt::passes {
namespace {

using ir::Node;
using ir::Value;

constexpr int kAdamWMaster = 6;  // adamw's optional 7th input
constexpr int kAdamWScalarsIn = 4, kAdamWSumsqIn = 5;
constexpr const char* kHyper[] = {"beta1", "beta2", "eps", "weight_decay"};

// What members of one group share.
struct Key {
  uint64_t hyper[4];  // the attributes' bits
  DType param, grad;
  bool masters;
  const Value* scalars;
  const Value* sumsq;
  ir::Phase phase;
  int stream;
  bool operator==(const Key& o) const {
    return std::equal(std::begin(hyper), std::end(hyper), std::begin(o.hyper)) && param == o.param && grad == o.grad &&
           masters == o.masters && scalars == o.scalars && sumsq == o.sumsq && phase == o.phase && stream == o.stream;
  }
};

Key KeyOf(const Node& n) {
  Key k{};
  for (int i = 0; i < 4; ++i) k.hyper[i] = std::bit_cast<uint64_t>(n.attrs.GetFloat(kHyper[i]));
  k.param = n.inputs[0]->dtype;
  k.grad = n.inputs[1]->dtype;
  k.masters = n.inputs.size() == kAdamWMaster + 1;
  k.scalars = n.inputs[kAdamWScalarsIn];
  k.sumsq = n.inputs[kAdamWSumsqIn];
  k.phase = n.phase;
  k.stream = n.stream;
  return k;
}

const Value* Root(const Value* v) { return ir::ResolveAlias(v).root; }

struct Group {
  Key key;
  std::vector<Node*> members;
  std::set<const Node*> member_set;
  std::set<const Value*> written;  // memory (alias roots) the members update in place
  std::set<const Value*> read;     // memory the members read (written included)

  void Add(Node* n) {
    members.push_back(n);
    member_set.insert(n);
    for (int o = 0; o < static_cast<int>(n->outputs.size()); ++o) {
      int input = -1;
      if (ir::FindAlias(*n, o, &input) != nullptr) written.insert(Root(n->inputs[input]));
    }
    for (const Value* in : n->inputs) read.insert(Root(in));
  }

  // Whether `n`, scheduled after the members so far, must stay after all of them: it reads memory
  // they update, overwrites in place memory they read, or has an ordering edge to one of them.
  bool ConflictsWith(const Node& n) const {
    for (const Value* in : n.inputs)
      if (written.count(Root(in))) return true;
    for (int o = 0; o < static_cast<int>(n.outputs.size()); ++o) {
      int input = -1;
      const ir::Alias* a = ir::FindAlias(n, o, &input);
      if (a != nullptr && a->kind == ir::AliasKind::kInPlace && read.count(Root(n.inputs[input]))) return true;
    }
    for (const Node* d : n.deps)
      if (member_set.count(d)) return true;
    return false;
  }
};

// Groups of two or more adamw nodes that may be fused, each in schedule order.
std::vector<std::vector<Node*>> FindGroups(const ir::Graph& g) {
  std::vector<std::vector<Node*>> out;
  std::vector<Group> open;
  auto close = [&](size_t i) {
    if (open[i].members.size() >= 2) out.push_back(std::move(open[i].members));
    open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));
  };
  for (const auto& np : g.nodes()) {
    Node* n = np.get();
    for (size_t i = open.size(); i-- > 0;)
      if (open[i].ConflictsWith(*n)) close(i);
    if (n->op->name != "adamw") continue;
    Key k = KeyOf(*n);
    auto it = std::find_if(open.begin(), open.end(), [&](const Group& gr) { return gr.key == k; });
    if (it == open.end()) {
      open.push_back(Group{k, {}, {}, {}, {}});
      it = open.end() - 1;
    }
    it->Add(n);
  }
  while (!open.empty()) close(0);
  return out;
}

// Replaces `members` (adamw nodes of one group, in schedule order) by one adamw_multi node at the
// last member's position.
void Fuse(ir::Graph& g, const std::vector<Node*>& members) {
  const int64_t k = static_cast<int64_t>(members.size());
  const Node& first = *members.front();
  const ir::AdamWMultiLayout l{k, first.inputs.size() == kAdamWMaster + 1};
  const int per = l.masters ? 4 : 3;  // outputs of one adamw node

  // Inputs by role, outputs (the members' values, replaced below) in the matching order.
  std::vector<Value*> inputs(static_cast<size_t>(l.inputs()));
  std::vector<Value*> old_outputs(static_cast<size_t>(l.outputs()));
  inputs[l.kScalarsInput] = first.inputs[kAdamWScalarsIn];
  inputs[l.kGradSumsqInput] = first.inputs[kAdamWSumsqIn];
  for (int64_t i = 0; i < k; ++i) {
    const Node& m = *members[i];
    const int64_t at[] = {l.param(i), l.exp_avg(i), l.exp_avg_sq(i), l.masters ? l.master(i) : -1};
    const int from[] = {0, 2, 3, kAdamWMaster};  // adamw's in-place inputs, output j over from[j]
    for (int j = 0; j < per; ++j) {
      inputs[at[j]] = m.inputs[from[j]];
      old_outputs[at[j] - ir::kAdamWMultiShift] = m.outputs[j];
    }
    inputs[l.grad(i)] = m.inputs[1];
  }

  const ir::OpDef* op = ir::GetOp("adamw_multi");
  ir::AttrMap attrs = first.attrs;
  attrs.Set("tensors", k);
  std::vector<ir::TypeSpec> in_types;
  for (const Value* v : inputs) in_types.push_back({v->dtype, v->shape});
  auto types = op->infer(in_types, attrs);
  ZT_CHECK(types.ok()) << "fuse_adamw grouped adamw nodes that adamw_multi rejects: " << types.status().ToString();
  for (size_t o = 0; o < old_outputs.size(); ++o)
    ZT_CHECK((*types)[o].dtype == old_outputs[o]->dtype && (*types)[o].shape == old_outputs[o]->shape);

  ReplaceByFusedNode(g, members, op, std::move(inputs), std::move(attrs), old_outputs, members.back());
}

}  // namespace

StatusOr<bool> FuseAdamW::Run(ir::Graph& g) {
  std::vector<std::vector<Node*>> groups = FindGroups(g);
  for (const auto& members : groups) Fuse(g, members);
  return !groups.empty();
}

}  // namespace zt::passes
