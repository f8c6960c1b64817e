// The ZeRO rewrite (stages 1-3) and its layout.
#include "passes/zero.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "ir/autodiff.h"
#include "ir/builder.h"
#include "ir/ops/cast.h"
#include "ir/ops/collective.h"
#include "ir/ops/flat.h"
#include "ir/ops/optim_utils.h"
#include "ir/optimizer.h"

namespace zt::passes {
namespace {

using ir::Node;
using ir::Phase;
using ir::Value;

bool AllDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// What the optimizer step of AppendOptimizerStep did with one parameter.
struct ParamStep {
  Value* param = nullptr;
  Value* grad = nullptr;      // autodiff's gradient
  Value* stored = nullptr;    // what the optimizer read: grad or its accumulated value
  Node* accumulate = nullptr; // grad_accum > 1
  Node* adamw = nullptr;
  double weight_decay = 0;
};

Node* ProducerOrNull(Value* v) { return v ? v->producer : nullptr; }

}  // namespace

std::string BlockKey(const std::string& name) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    parts.push_back(name.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  std::string key;
  for (size_t i = 0; i < parts.size(); ++i) {
    key += (i ? "." : "") + parts[i];
    if (AllDigits(parts[i])) return key;
  }
  size_t last = name.rfind('.');
  return last == std::string::npos ? name : name.substr(0, last);
}

std::string ZeroStateName(const ZeroUnit& u, const char* what) { return "zero." + u.name + "." + what; }

std::string ZeroLayout::ToString() const {
  std::string s = "ZeRO stage " + std::to_string(stage) + " over " + std::to_string(world_size) + " ranks, " +
                  std::to_string(units.size()) + " units\n";
  for (const ZeroUnit& u : units) {
    s += "  " + u.name + ": " + std::to_string(u.params.size()) + " params, " + std::to_string(u.numel) +
         " elements, padded " + std::to_string(u.padded) + ", shard " + std::to_string(u.shard) + "\n";
  }
  return s;
}

StatusOr<ZeroLayout> PlanZeroLayout(const std::vector<ParamForLayout>& params, const ZeroOptions& o) {
  if (o.world_size < 1) return InvalidArgument("ZeRO: world_size must be >= 1");
  if (o.bucket_elements < 1) return InvalidArgument("ZeRO: the bucket size must be >= 1 element");
  ZeroLayout layout;
  layout.stage = o.stage;
  layout.world_size = o.world_size;
  std::map<std::string, int> name_uses;
  std::string current_key;
  for (const ParamForLayout& pl : params) {
    const Value* p = pl.param;
    std::string key = o.unit == GatherUnit::kParam ? p->name : BlockKey(p->name);
    ZeroUnit* u = layout.units.empty() ? nullptr : &layout.units.back();
    bool fits = u && o.unit == GatherUnit::kBlock && key == current_key && u->dtype == p->dtype &&
                u->weight_decay == pl.weight_decay && u->numel + p->shape.numel() <= o.bucket_elements;
    if (!fits) {
      ZeroUnit nu;
      int n = name_uses[key]++;
      nu.name = n == 0 ? key : key + ".part" + std::to_string(n);
      nu.dtype = p->dtype;
      nu.weight_decay = pl.weight_decay;
      layout.units.push_back(nu);
      u = &layout.units.back();
      current_key = key;
    }
    u->params.push_back({p->name, p->dtype, p->shape, u->numel});
    u->numel += p->shape.numel();
  }
  for (ZeroUnit& u : layout.units) {
    u.shard = (u.numel + o.world_size - 1) / o.world_size;
    u.padded = u.shard * o.world_size;
  }
  return layout;
}

void AppendGlobalLoss(ir::Graph& g) {
  ir::Builder b(&g);
  Node* after = g.loss()->producer;
  int idx = g.NodeIndex(after);
  b.set_insert_before(idx + 1 < static_cast<int>(g.nodes().size()) ? g.nodes()[idx + 1].get() : nullptr);
  b.set_phase(Phase::kForward);
  b.set_stream(1);
  Value* global = ir::ops::AllReduce(b, g.loss(), "avg", kGlobalLoss);
  g.outputs().push_back(global);
}

StatusOr<bool> ZeroPass::Run(ir::Graph& g) {
  if (o_.stage == 0) return false;  // stage 0 shards nothing (data_parallel.h syncs gradients)
  if (o_.stage < 0 || o_.stage > 3) return InvalidArgument("ZeRO stage must be 0-3, got " + std::to_string(o_.stage));
  // 1. Read the optimizer step AppendOptimizerStep built.
  std::vector<ParamStep> steps;
  Value* scalars = nullptr;
  Value* old_sumsq = nullptr;
  std::vector<Node*> resets;  // zero(acc) nodes
  for (const auto& n : g.nodes()) {
    if (n->op->name == "zero") resets.push_back(n.get());
    if (n->op->name != "adamw") continue;
    if (n->inputs.size() != 6 && n->inputs.size() != 7) return FailedPrecondition("ZeRO: unexpected adamw node");
    ParamStep s;
    s.param = n->inputs[0];
    s.stored = n->inputs[1];
    s.adamw = n.get();
    s.weight_decay = n->attrs.GetFloat("weight_decay");
    s.grad = g.GradOf(s.param);
    if (s.grad == nullptr) return FailedPrecondition("ZeRO: %" + s.param->name + " has no gradient entry");
    if (s.stored->producer && s.stored->producer->op->name == "accumulate") s.accumulate = s.stored->producer;
    scalars = n->inputs[4];
    old_sumsq = n->inputs[5];
    steps.push_back(s);
  }
  if (steps.empty()) return FailedPrecondition("ZeRO: the graph has no optimizer step; run AppendOptimizerStep first");
  Node* adamw0 = steps[0].adamw;
  const ir::AttrMap opt_attrs = adamw0->attrs;
  const bool master_weights = adamw0->inputs.size() == 7;
  const bool accumulating = steps[0].accumulate != nullptr;
  std::map<const Value*, const ParamStep*> step_of;
  for (const ParamStep& s : steps) step_of[s.param] = &s;

  // 2. The layout: parameters in creation order.
  std::vector<ParamForLayout> pls;
  for (Value* p : ir::ParamsOf(g)) {
    auto it = step_of.find(p);
    if (it == step_of.end()) return FailedPrecondition("ZeRO: param %" + p->name + " has no adamw node");
    pls.push_back({p, it->second->weight_decay});
  }
  ZT_ASSIGN_OR_RETURN(layout_, PlanZeroLayout(pls, o_));
  const int64_t N = o_.world_size;
  // With one rank the unit collectives are identities: they are left out (no copies), and only
  // the flat packing the sharded optimizer works on remains.
  const bool single_rank = N == 1;

  // 3. Remove the single-process optimizer: resets, adamw, the norm, per-parameter states.
  std::vector<Value*> dead_states;
  for (Node* z : resets) g.RemoveNode(z);
  for (ParamStep& s : steps) {
    for (int i = 2; i < static_cast<int>(s.adamw->inputs.size()); ++i)
      if (i == 2 || i == 3 || i == 6) dead_states.push_back(s.adamw->inputs[i]);
    g.RemoveNode(s.adamw);
    s.adamw = nullptr;
  }
  auto& outs = g.outputs();
  outs.erase(std::remove(outs.begin(), outs.end(), old_sumsq), outs.end());
  g.RemoveNode(old_sumsq->producer);
  if (o_.stage >= 2 && accumulating) {
    for (ParamStep& s : steps) {
      dead_states.push_back(s.accumulate->inputs[0]);
      g.RemoveNode(s.accumulate);
      s.accumulate = nullptr;
      s.stored = s.grad;
    }
  }
  for (Value* v : dead_states) g.RemovePersistent(v);

  ir::Builder b(&g);
  auto set_category = [](Value* v, MemCategory c) { v->category = c; };
  // 4. Per-unit states.
  struct UnitValues {
    Value* master = nullptr;  // f32 shard (stages 1-2 always; stage 3 for 16-bit params)
    Value* m = nullptr;
    Value* v = nullptr;
    Value* shard = nullptr;   // stage 3: the parameter shard
    Value* acc = nullptr;     // stages 2-3 with accumulation: f32 gradient shard accumulator
    Value* grad = nullptr;    // what the optimizer reads: this rank's (accumulated) gradient shard
    std::vector<Value*> params;
  };
  std::vector<UnitValues> uv(layout_.units.size());
  for (size_t i = 0; i < layout_.units.size(); ++i) {
    const ZeroUnit& u = layout_.units[i];
    Shape s{u.shard};
    if (o_.stage < 3 || u.dtype != DType::kF32)
      uv[i].master = b.State(ZeroStateName(u, "master"), DType::kF32, s, MemCategory::kOptimizerState);
    uv[i].m = b.State(ZeroStateName(u, "exp_avg"), DType::kF32, s, MemCategory::kOptimizerState);
    uv[i].v = b.State(ZeroStateName(u, "exp_avg_sq"), DType::kF32, s, MemCategory::kOptimizerState);
    if (o_.stage == 3) uv[i].shard = b.Param(ZeroStateName(u, "shard"), u.dtype, s);
    if (o_.stage >= 2 && accumulating)
      uv[i].acc = b.State(ZeroStateName(u, "grad_acc"), DType::kF32, s, MemCategory::kGradients);
    for (const ZeroParam& zp : u.params) uv[i].params.push_back(g.FindValue(zp.name));
  }

  // 5. Gradients. Stages 2-3: reduce-scatter each unit as soon as its last gradient exists.
  for (size_t i = 0; i < layout_.units.size(); ++i) {
    const ZeroUnit& u = layout_.units[i];
    std::vector<Value*> grads;
    for (Value* p : uv[i].params) grads.push_back(step_of.at(p)->stored);
    if (o_.stage >= 2) {
      int last = -1;
      for (Value* gr : grads) last = std::max(last, g.NodeIndex(ProducerOrNull(gr)));
      b.set_insert_before(last + 1 < static_cast<int>(g.nodes().size()) ? g.nodes()[last + 1].get() : nullptr);
      b.set_phase(Phase::kBackward);
    } else {
      b.set_insert_before(nullptr);
      b.set_phase(Phase::kOptimizer);
    }
    b.set_stream(0);
    Value* flat = ir::ops::Pack(b, grads, u.padded, grads[0]->dtype, ZeroStateName(u, "grad_flat"));
    set_category(flat, MemCategory::kCommBuffers);
    Value* gs = flat;  // one rank: averaging over one rank is the identity, and the shard is all of it
    if (!single_rank) {
      b.set_stream(1);
      gs = ir::ops::ReduceScatter(b, flat, N, "avg", ZeroStateName(u, "grad_shard"));
      set_category(gs, MemCategory::kGradients);
      b.set_stream(0);
    }
    uv[i].grad = uv[i].acc ? ir::ops::Accumulate(b, uv[i].acc, gs, ZeroStateName(u, "grad_acc_add")) : gs;
  }
  g.grads().clear();  // the full gradients are consumed into shards; nothing reads them after the step

  // 6. The optimizer on shards.
  b.set_insert_before(nullptr);
  b.set_phase(Phase::kOptimizer);
  std::vector<Value*> shards;
  for (auto& x : uv) shards.push_back(x.grad);
  Value* local = ir::ops::SumSquares(b, shards, "optimizer.grad_sumsq_local");
  b.set_stream(1);
  Value* sumsq = ir::ops::AllReduce(b, local, "sum", ir::kGradSumSquares);
  b.set_stream(0);
  outs.push_back(sumsq);
  // Stages 1-2 with several ranks: each unit's update is followed at once by its cast and
  // all-gather, so the all-gathers overlap the later units' updates. With one rank there is nothing
  // to overlap: every update comes first (fuse_adamw can then make them one launch), then the casts
  // and unpacks.
  std::vector<Value*> updated(layout_.units.size(), nullptr);
  auto update = [&](size_t i) {
    const ZeroUnit& u = layout_.units[i];
    ir::AttrMap attrs = opt_attrs;
    attrs.Set("weight_decay", u.weight_decay);
    if (o_.stage == 3) {
      std::vector<Value*> in = {uv[i].shard, uv[i].grad, uv[i].m, uv[i].v, scalars, sumsq};
      if (uv[i].master) in.push_back(uv[i].master);
      b.Emit("adamw", in, attrs, ZeroStateName(u, "update"));
      return;
    }
    updated[i] = b.Emit("adamw", {uv[i].master, uv[i].grad, uv[i].m, uv[i].v, scalars, sumsq}, attrs,
                        ZeroStateName(u, "update"))[0];
  };
  if (single_rank || o_.stage == 3) {
    for (size_t i = 0; i < layout_.units.size(); ++i) update(i);
  }
  for (size_t i = 0; i < layout_.units.size(); ++i) {
    const ZeroUnit& u = layout_.units[i];
    if (o_.stage == 3) continue;
    if (!single_rank) update(i);
    Value* pshard =
        u.dtype == DType::kF32 ? updated[i] : ir::ops::Cast(b, updated[i], u.dtype, ZeroStateName(u, "param_shard"));
    set_category(pshard, MemCategory::kCommBuffers);
    Value* full = pshard;  // one rank: its shard is the whole unit
    if (!single_rank) {
      b.set_stream(1);
      full = ir::ops::AllGather(b, pshard, N, ZeroStateName(u, "param_flat"));
      b.set_stream(0);
      set_category(full, MemCategory::kCommBuffers);
    }
    ir::ops::UnpackInto(b, full, uv[i].params, ZeroStateName(u, "param_update"));
  }
  if (accumulating) {  // reset the accumulators after the update
    for (size_t i = 0; i < layout_.units.size(); ++i) {
      if (uv[i].acc) {
        ir::ops::Zero(b, uv[i].grad, ZeroStateName(layout_.units[i], "grad_reset"));
      } else {
        for (Value* p : uv[i].params) ir::ops::Zero(b, step_of.at(p)->stored, p->name + ".grad_reset");
      }
    }
  }

  // 7. Stage 3: parameters become views of gathered units, once per phase that uses them.
  if (o_.stage == 3) {
    for (size_t i = 0; i < layout_.units.size(); ++i) {
      const ZeroUnit& u = layout_.units[i];
      std::set<const Value*> unit_params(uv[i].params.begin(), uv[i].params.end());
      for (Phase ph : {Phase::kForward, Phase::kBackward}) {
        std::vector<Node*> users;
        for (const auto& n : g.nodes()) {
          if (n->phase != ph) continue;
          for (Value* in : n->inputs)
            if (unit_params.count(in)) {
              users.push_back(n.get());
              break;
            }
        }
        if (users.empty()) continue;
        b.set_insert_before(users.front());
        b.set_phase(ph);
        const char* tag = ph == Phase::kForward ? "gather_fwd" : "gather_bwd";
        Value* full = uv[i].shard;  // one rank: the parameters are views of its (whole) shard
        if (!single_rank) {
          b.set_stream(1);
          full = ir::ops::AllGather(b, uv[i].shard, N, ZeroStateName(u, tag));
          set_category(full, MemCategory::kCommBuffers);
          b.set_stream(0);
        }
        std::map<const Value*, Value*> view_of;
        for (size_t k = 0; k < u.params.size(); ++k) {
          view_of[uv[i].params[k]] = ir::ops::ViewSlice(b, full, u.params[k].offset, u.params[k].shape,
                                                        uv[i].params[k]->name + (ph == Phase::kForward ? ".fwd" : ".bwd"));
        }
        for (Node* n : users)
          for (Value*& in : n->inputs)
            if (view_of.count(in)) in = view_of[in];
      }
      for (Value* p : uv[i].params) g.RemovePersistent(p);
    }
  }
  AppendGlobalLoss(g);
  return true;
}

}  // namespace zt::passes
