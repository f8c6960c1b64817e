// Memory planner. A randomized test builds many random DAGs (add, mul, scale, matmul, reshape,
// reduce_sum_to, broadcast_to, in-place adamw; random shapes, dtypes, categories and outputs) and
// checks the plan's invariants: no two roots whose live ranges overlap share arena bytes, offsets
// are aligned, aliases share their root's offset and category; running the graph on the plan
// (arena) and with per-value allocation (dynamic) gives bit-identical results; the allocator's
// measured peaks equal the plan's predictions (dynamic: live_peak per category and in total;
// arena: arena_total). Small hand-checked plans pin exact offsets.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <random>

#include "ir/builder.h"
#include "ir/ops/adamw.h"
#include "ir/ops/elementwise.h"
#include "ir/ops/matmul.h"
#include "ir/ops/views.h"
#include "ir/optimizer.h"
#include "ir/text.h"
#include "passes/memory_planner.h"
#include "support/graph_runner.h"

namespace zt::passes {
namespace {

using ir::Value;
using zt::testing::GraphRunner;

struct RandomGraphInfo {
  std::vector<std::string> persistent;  // names of inputs, params and states to fill with data
  bool dce = true;
};

// Builds the same graph for the same seed.
std::unique_ptr<ir::Graph> BuildRandomGraph(uint64_t seed, RandomGraphInfo* info) {
  std::mt19937_64 rng(seed);
  auto pick = [&](int64_t n) { return static_cast<int64_t>(rng() % static_cast<uint64_t>(n)); };
  const int64_t kDims[] = {1, 2, 3, 5, 8, 13};
  auto dim = [&] { return kDims[pick(6)]; };
  auto random_shape = [&](int rank) {
    std::vector<int64_t> d;
    for (int i = 0; i < rank; ++i) d.push_back(dim());
    return Shape(d);
  };
  DType dt = seed % 3 == 1 ? DType::kBF16 : DType::kF32;
  auto g = std::make_unique<ir::Graph>("random" + std::to_string(seed));
  ir::Builder b(g.get());
  std::vector<Value*> pool;
  info->persistent.clear();
  int n_in = 1 + static_cast<int>(pick(3)), n_param = 1 + static_cast<int>(pick(3));
  for (int i = 0; i < n_in; ++i) {
    pool.push_back(b.Input("in" + std::to_string(i), dt, random_shape(1 + static_cast<int>(pick(3)))));
    info->persistent.push_back(pool.back()->name);
  }
  std::vector<Value*> params;
  for (int i = 0; i < n_param; ++i) {
    params.push_back(b.Param("p" + std::to_string(i), dt, random_shape(1 + static_cast<int>(pick(3)))));
    pool.push_back(params.back());
    info->persistent.push_back(params.back()->name);
  }
  auto new_param = [&](Shape s) {
    Value* p = b.Param(g->UniqueName("w"), dt, std::move(s));
    info->persistent.push_back(p->name);
    return p;
  };

  int steps = 4 + static_cast<int>(pick(24));
  for (int step = 0; step < steps; ++step) {
    Value* x = pool[pick(static_cast<int64_t>(pool.size()))];
    Value* out = nullptr;
    switch (pick(7)) {
      case 0:
      case 1: {  // add / mul with a suffix-shaped second operand from the pool
        std::vector<Value*> ys;
        for (Value* y : pool)
          if (x->shape.EndsWith(y->shape)) ys.push_back(y);
        Value* y = ys[pick(static_cast<int64_t>(ys.size()))];
        out = pick(2) ? ir::ops::Add(b, x, y) : ir::ops::Mul(b, x, y);
        break;
      }
      case 2:
        out = ir::ops::Scale(b, x, pick(2) ? 0.5 : -1.25);
        break;
      case 3: {  // matmul with a rank-2 right operand [K, N] (or [N, K] transposed)
        if (x->shape.rank() < 2) {
          out = ir::ops::Reshape(b, x, Shape{1, x->shape.numel()});
          break;
        }
        bool ta = pick(3) == 0, tb = pick(2) == 0;
        int64_t k = ta ? x->shape[-2] : x->shape[-1];
        std::vector<Value*> ws;
        for (Value* w : pool)
          if (w->shape.rank() == 2 && (tb ? w->shape[1] : w->shape[0]) == k) ws.push_back(w);
        Value* w = !ws.empty() && pick(2) ? ws[pick(static_cast<int64_t>(ws.size()))]
                                          : new_param(tb ? Shape{dim(), k} : Shape{k, dim()});
        int64_t n = tb ? w->shape[0] : w->shape[1];
        Value* bias = pick(3) == 0 ? new_param(Shape{n}) : nullptr;
        out = ir::ops::Matmul(b, x, w, ta, tb, bias);
        break;
      }
      case 4: {  // reshape: flatten, merge the two leading dims, or split a factor off
        int64_t n = x->shape.numel();
        std::vector<Shape> options = {Shape{n}};
        if (x->shape.rank() >= 2) {
          std::vector<int64_t> d = x->shape.Slice(1, x->shape.rank()).dims();
          d[0] *= x->shape[0];
          options.push_back(Shape(d));
        }
        for (int64_t f : {2, 3, 5})
          if (n % f == 0) options.push_back(Shape{f, n / f});
        out = ir::ops::Reshape(b, x, options[pick(static_cast<int64_t>(options.size()))]);
        break;
      }
      case 5:
        if (x->shape.rank() == 0) {
          out = ir::ops::Scale(b, x, 2.0);
        } else {
          int k = 1 + static_cast<int>(pick(x->shape.rank()));
          out = ir::ops::ReduceSumTo(b, x, x->shape.Slice(k, x->shape.rank()));
        }
        break;
      case 6: {
        if (x->shape.rank() >= 3) {
          out = ir::ops::Scale(b, x, 3.0);
          break;
        }
        std::vector<int64_t> d = {dim()};
        for (int64_t v : x->shape.dims()) d.push_back(v);
        out = ir::ops::BroadcastTo(b, x, Shape(d));
        break;
      }
    }
    if (out != x && out->producer != nullptr && pick(6) == 0) out->category = MemCategory::kGradients;
    pool.push_back(out);
  }

  // Graph outputs: a random subset of the intermediates (at least the last one).
  std::vector<Value*> outs;
  for (Value* v : pool)
    if (!v->persistent() && pick(4) == 0) outs.push_back(v);
  if (!pool.back()->persistent() && (outs.empty() || outs.back() != pool.back())) outs.push_back(pool.back());
  g->outputs() = outs;

  // In-place optimizer updates at the end for some params whose shape matches a pool value.
  Value* scalars = nullptr;
  Value* sumsq = nullptr;
  // A param is updated only when no graph output is a view of it (reading such an output after the
  // step would see the updated memory; the verifier rejects that).
  auto view_root = [](Value* v) {
    while (v->producer != nullptr && v->producer->op->name == "reshape") v = v->producer->inputs[0];
    return v;
  };
  for (Value* p : params) {
    if (pick(2)) continue;
    bool viewed = false;
    for (Value* o : outs) viewed |= view_root(o) == p;
    if (viewed) continue;
    std::vector<Value*> grads;
    for (Value* v : pool)
      if (v != p && !v->persistent() && v->shape == p->shape) grads.push_back(v);
    if (grads.empty()) continue;
    if (scalars == nullptr) {
      scalars = b.Input(ir::kAdamWScalarsInput, DType::kF32, Shape{ir::kAdamWScalars});
      info->persistent.push_back(scalars->name);
    }
    Value* m = b.State(p->name + ".m", DType::kF32, p->shape, MemCategory::kOptimizerState);
    Value* v = b.State(p->name + ".v", DType::kF32, p->shape, MemCategory::kOptimizerState);
    info->persistent.push_back(m->name);
    info->persistent.push_back(v->name);
    b.set_phase(ir::Phase::kOptimizer);
    if (sumsq == nullptr) {
      sumsq = b.Input("grad_sumsq", DType::kF32, Shape{});
      info->persistent.push_back(sumsq->name);
    }
    b.Emit("adamw", {p, grads[pick(static_cast<int64_t>(grads.size()))], m, v, scalars, sumsq}, {}, p->name + ".upd");
  }
  info->dce = pick(4) != 0;
  return g;
}

// Fills every persistent value with deterministic data (the scalars input with AdamW scalars).
void FillPersistent(GraphRunner& r, const RandomGraphInfo& info, uint64_t seed) {
  for (size_t i = 0; i < info.persistent.size(); ++i) {
    const std::string& name = info.persistent[i];
    Value* v = r.value(name);
    if (name == ir::kAdamWScalarsInput) {
      r.Set(name, {0.01f, 0.1f, 0.001f, 0.5f, 0.0f});
    } else if (name == "grad_sumsq") {
      r.Set(name, {1.0f});
    } else {
      r.Set(name, zt::testing::RandomUniform(v->shape.numel(), seed * 1000 + i, v->kind == ir::ValueKind::kState ? 0.0f : -1.0f, 1.0f));
    }
  }
}

bool Overlap(const LiveRange& a, const LiveRange& b) { return a.def <= b.end && b.def <= a.end; }

void CheckPlanInvariants(const ir::Graph& g, const PlanStats& plan, uint64_t seed) {
  auto ranges = ComputeLiveRanges(g);
  std::vector<const Value*> roots;
  for (const auto& v : g.values()) {
    ASSERT_TRUE(v->offset.has_value()) << "seed " << seed << ": %" << v->name << " has no offset";
    EXPECT_EQ(*v->offset % static_cast<int64_t>(kMemAlignment), 0) << "seed " << seed << ": %" << v->name;
    const Value* root = AliasRoot(v.get());
    if (root != v.get()) {
      EXPECT_EQ(v->offset, root->offset) << "seed " << seed << ": alias %" << v->name << " of %" << root->name;
      EXPECT_EQ(v->category, root->category) << "seed " << seed << ": alias %" << v->name;
      EXPECT_EQ(v->nbytes(), root->nbytes());
      continue;
    }
    roots.push_back(v.get());
    ASSERT_TRUE(ranges.count(v.get())) << "seed " << seed << ": root %" << v->name << " has no live range";
    int c = static_cast<int>(ArenaCategory(v.get()));
    EXPECT_LE(*v->offset + static_cast<int64_t>(AlignedBytes(v->nbytes())), plan.arena_bytes[c]) << "seed " << seed;
    if (!v->persistent()) {  // transients sit past the persistent values of their arena
      EXPECT_GE(*v->offset, plan.persistent_bytes[c]) << "seed " << seed << ": %" << v->name;
    }
  }
  for (size_t i = 0; i < roots.size(); ++i) {
    for (size_t j = i + 1; j < roots.size(); ++j) {
      const Value* a = roots[i];
      const Value* b = roots[j];
      if (ArenaCategory(a) != ArenaCategory(b) || !Overlap(ranges[a], ranges[b])) continue;
      int64_t a0 = *a->offset, a1 = a0 + static_cast<int64_t>(AlignedBytes(a->nbytes()));
      int64_t b0 = *b->offset, b1 = b0 + static_cast<int64_t>(AlignedBytes(b->nbytes()));
      EXPECT_TRUE(a1 <= b0 || b1 <= a0) << "seed " << seed << ": %" << a->name << " [" << a0 << "," << a1 << ") live ["
                                        << ranges[a].def << "," << ranges[a].end << "] overlaps %" << b->name << " ["
                                        << b0 << "," << b1 << ") live [" << ranges[b].def << "," << ranges[b].end << "]";
    }
  }
}

std::vector<uint32_t> Bits(const std::vector<float>& v) {
  std::vector<uint32_t> out(v.size());
  std::memcpy(out.data(), v.data(), v.size() * 4);
  return out;
}

TEST(MemoryPlanner, RandomGraphsPlanSoundlyAndPredictPeaks) {
  int with_adamw = 0, with_workspace = 0, with_aliases = 0, nodes = 0, shared = 0;
  for (uint64_t seed = 1; seed <= 1000; ++seed) {
    RandomGraphInfo info;
    GraphRunner arena(BuildRandomGraph(seed, &info), ExecMemoryMode::kArena, info.dce);
    RandomGraphInfo info2;
    GraphRunner dynamic(BuildRandomGraph(seed, &info2), ExecMemoryMode::kDynamic, info2.dce);
    const ir::Graph& g = arena.graph();
    ASSERT_EQ(ir::PrintGraph(g), ir::PrintGraph(dynamic.graph())) << "seed " << seed;
    const PlanStats& plan = arena.program().plan();
    CheckPlanInvariants(g, plan, seed);
    if (HasFailure()) {
      ADD_FAILURE() << "seed " << seed << " graph:\n" << ir::PrintGraph(g);
      return;
    }
    for (const auto& n : g.nodes()) {
      with_adamw += n->op->name == "adamw";
      with_aliases += n->op->name == "reshape";
      ++nodes;
    }
    std::map<std::pair<int, int64_t>, int> at;  // roots placed at the same (category, offset)
    for (const auto& v : g.values())
      if (AliasRoot(v.get()) == v.get() && at[{static_cast<int>(v->category), *v->offset}]++ > 0) ++shared;
    with_workspace += plan.workspace_bytes > 0;

    FillPersistent(arena, info, seed);
    FillPersistent(dynamic, info2, seed);
    for (int step = 0; step < 2; ++step) {
      arena.Run();
      dynamic.Run();
      for (const Value* o : g.outputs()) {
        EXPECT_EQ(Bits(arena.Get(o->name)), Bits(dynamic.Get(o->name))) << "seed " << seed << " step " << step << ": %" << o->name;
      }
      for (const std::string& name : info.persistent) {
        EXPECT_EQ(Bits(arena.Get(name)), Bits(dynamic.Get(name))) << "seed " << seed << " step " << step << ": %" << name;
      }
      // Fresh backends: the peaks seen so far are this executor's.
      const MemoryStats& ds = dynamic.backend().stats();
      for (int c = 0; c < kNumMemCategories; ++c) {
        EXPECT_EQ(ds.peak(static_cast<MemCategory>(c)), plan.live_peak[c])
            << "seed " << seed << ": dynamic peak of " << MemCategoryName(static_cast<MemCategory>(c)) << "\n" << plan.ToString();
      }
      EXPECT_EQ(ds.peak_total(), plan.live_peak_total) << "seed " << seed << "\n" << plan.ToString();
      const MemoryStats& as = arena.backend().stats();
      EXPECT_EQ(as.peak_total(), plan.arena_total) << "seed " << seed;
      for (int c = 0; c < kNumMemCategories; ++c) EXPECT_EQ(as.peak(static_cast<MemCategory>(c)), plan.arena_bytes[c]);
      EXPECT_LE(plan.live_peak_total, plan.arena_total) << "seed " << seed;
    }
    if (HasFailure()) {
      ADD_FAILURE() << "seed " << seed << " graph:\n" << ir::PrintGraph(g) << plan.ToString();
      return;
    }
  }
  // The generator must actually exercise the interesting cases (memory reuse among them).
  std::printf("random plans: %d nodes, %d reshapes, %d adamw, %d with workspace, %d roots reusing memory\n", nodes,
              with_aliases, with_adamw, with_workspace, shared);
  EXPECT_GT(shared, 400);
  EXPECT_GT(with_adamw, 80);
  EXPECT_GT(with_workspace, 80);
  EXPECT_GT(with_aliases, 200);
}

// x:[64] f32 (256 bytes). a = 2x, b = 2a, c = 2b; output c. a and c never live together.
TEST(MemoryPlanner, ChainReusesMemoryExactly) {
  auto g = std::make_unique<ir::Graph>("chain");
  ir::Builder b(g.get());
  Value* x = b.Input("x", DType::kF32, Shape{64});
  Value* a = ir::ops::Scale(b, x, 2.0, "a");
  Value* bb = ir::ops::Scale(b, a, 2.0, "b");
  Value* c = ir::ops::Scale(b, bb, 2.0, "c");
  g->outputs() = {c};
  MemoryPlanner planner;
  auto changed = planner.Run(*g);
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(*changed);
  EXPECT_EQ(x->offset, 0);
  EXPECT_EQ(a->offset, 256);
  EXPECT_EQ(bb->offset, 512);
  EXPECT_EQ(c->offset, 256);
  auto ranges = ComputeLiveRanges(*g);
  EXPECT_EQ(ranges[x].def, -1);
  EXPECT_EQ(ranges[x].end, 3);
  EXPECT_EQ(ranges[a].def, 0);
  EXPECT_EQ(ranges[a].end, 1);
  EXPECT_EQ(ranges[c].end, 3) << "outputs live to the end";
  PlanStats s = ComputePlanStats(*g);
  int act = static_cast<int>(MemCategory::kActivations);
  EXPECT_EQ(s.arena_bytes[act], 768);
  EXPECT_EQ(s.arena_total, 768);
  EXPECT_EQ(s.live_peak[act], 768);
  EXPECT_EQ(s.live_peak_total, 768);
  EXPECT_EQ(s.workspace_bytes, 0);
  EXPECT_EQ(s.persistent_bytes[act], 256);
  EXPECT_EQ(s.transient_bytes, 512);
  EXPECT_NE(s.ToString().find("activations: arena 768 B (persistent 256 B), live peak 768 B"), std::string::npos)
      << s.ToString();
  EXPECT_NE(s.ToString().find("transient arena (under activations): 512 B"), std::string::npos) << s.ToString();

  // The planned graph prints its offsets and reads them back.
  std::string text = ir::PrintGraph(*g);
  EXPECT_NE(text.find("%c : f32[64] @256 = scale(%b)"), std::string::npos) << text;
  auto p = ir::ParseGraph(text);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(ir::PrintGraph(**p), text);
  PlanStats s2 = ComputePlanStats(**p);
  EXPECT_EQ(s2.arena_total, s.arena_total);
  EXPECT_EQ(s2.live_peak_total, s.live_peak_total);
}

// Views extend their root's life: r = reshape(a) is used last, so a must stay intact until then.
TEST(MemoryPlanner, ViewsExtendTheirRootsLife) {
  auto g = std::make_unique<ir::Graph>("view");
  ir::Builder b(g.get());
  Value* x = b.Input("x", DType::kF32, Shape{8, 8});
  Value* a = ir::ops::Scale(b, x, 2.0, "a");     // #0
  Value* r = ir::ops::Reshape(b, a, Shape{64}, "r");  // #1 (alias of a)
  Value* c = ir::ops::Scale(b, x, 3.0, "c");     // #2: must not take a's bytes
  Value* d = ir::ops::Scale(b, ir::ops::Reshape(b, c, Shape{64}), 1.0, "d");
  Value* e = ir::ops::Add(b, r, d, "e");       // last use of r (and so of a)
  g->outputs() = {e};
  MemoryPlanner planner;
  ASSERT_TRUE(planner.Run(*g).ok());
  auto ranges = ComputeLiveRanges(*g);
  EXPECT_FALSE(ranges.count(r)) << "an alias has no range of its own";
  EXPECT_EQ(ranges[a].end, g->NodeIndex(e->producer));
  EXPECT_EQ(r->offset, a->offset);
  EXPECT_NE(c->offset, a->offset);
  EXPECT_NE(d->offset, a->offset);
  EXPECT_EQ(AliasRoot(r), a);
}

}  // namespace
}  // namespace zt::passes
