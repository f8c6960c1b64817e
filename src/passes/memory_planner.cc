// Liveness-based static memory planning.
#include "passes/memory_planner.h"

#include <algorithm>
#include <map>
#include <vector>

#include "ir/op_registry.h"

namespace zt::passes {

const ir::Value* AliasRoot(const ir::Value* v) { return ir::ResolveAlias(v).root; }

ir::Value* AliasRoot(ir::Value* v) { return const_cast<ir::Value*>(AliasRoot(static_cast<const ir::Value*>(v))); }

std::map<const ir::Value*, LiveRange> ComputeLiveRanges(const ir::Graph& g) {
  std::map<const ir::Value*, LiveRange> ranges;
  int n = static_cast<int>(g.nodes().size());
  for (const auto& v : g.values()) {
    const ir::Value* r = AliasRoot(v.get());
    if (r != v.get()) continue;
    if (v->persistent()) ranges[r] = {-1, n};
  }
  for (int i = 0; i < n; ++i) {
    const ir::Node* node = g.nodes()[i].get();
    for (const ir::Value* o : node->outputs) {
      const ir::Value* r = AliasRoot(o);
      if (r == o) ranges[r] = {i, i};
    }
    for (const ir::Value* in : node->inputs) {
      LiveRange& lr = ranges[AliasRoot(in)];
      lr.end = std::max(lr.end, i);
    }
    for (const ir::Value* o : node->outputs) {  // an alias defined here keeps its root alive here
      LiveRange& lr = ranges[AliasRoot(o)];
      lr.end = std::max(lr.end, i);
    }
  }
  auto keep = [&](const ir::Value* v) { ranges[AliasRoot(v)].end = n; };
  for (const ir::Value* v : g.outputs()) keep(v);
  if (g.loss()) keep(g.loss());
  for (const auto& [p, gr] : g.grads()) keep(gr);
  return ranges;
}

MemCategory ArenaCategory(const ir::Value* root) {
  return root->persistent() ? root->category : MemCategory::kActivations;
}

StatusOr<bool> MemoryPlanner::Run(ir::Graph& g) {
  auto ranges = ComputeLiveRanges(g);
  // Persistent roots by category; transient roots together.
  std::array<int64_t, kNumMemCategories> persistent_end{};
  std::vector<const ir::Value*> transient;
  for (const auto& v : g.values()) {
    ir::Value* root = AliasRoot(v.get());
    if (root != v.get()) continue;
    int c = static_cast<int>(v->category);
    if (v->persistent()) {
      v->offset = persistent_end[c];
      persistent_end[c] += static_cast<int64_t>(AlignedBytes(v->nbytes()));
    } else {
      transient.push_back(v.get());
    }
  }
  // Transients: largest first, each at the lowest offset (after the persistent activations) free
  // of every placed value live at the same time.
  std::stable_sort(transient.begin(), transient.end(), [&](const ir::Value* a, const ir::Value* b) {
    size_t sa = AlignedBytes(a->nbytes()), sb = AlignedBytes(b->nbytes());
    if (sa != sb) return sa > sb;
    return ranges[a].def < ranges[b].def;
  });
  const int64_t transient_start = persistent_end[static_cast<int>(MemCategory::kActivations)];
  struct Placed {
    int64_t begin, end;  // bytes
    LiveRange live;
  };
  std::vector<Placed> placed;
  for (const ir::Value* v : transient) {
    int64_t size = static_cast<int64_t>(AlignedBytes(v->nbytes()));
    LiveRange lr = ranges[v];
    // Address ranges of placed values live at the same time, sorted; take the first gap.
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (const Placed& p : placed)
      if (p.live.def <= lr.end && lr.def <= p.live.end) busy.push_back({p.begin, p.end});
    std::sort(busy.begin(), busy.end());
    int64_t offset = transient_start;
    for (auto& [b, e] : busy) {
      if (b >= offset + size) break;
      offset = std::max(offset, e);
    }
    const_cast<ir::Value*>(v)->offset = offset;
    placed.push_back({offset, offset + size, lr});
  }
  // Aliases share their root's memory (from their byte offset in it) and category.
  for (const auto& v : g.values()) {
    ir::AliasTarget t = ir::ResolveAlias(v.get());
    if (t.root == v.get()) continue;
    v->offset = *t.root->offset + t.byte_offset;
    v->category = t.root->category;
  }
  return true;
}

PlanStats ComputePlanStats(const ir::Graph& g, ir::Target target) {
  PlanStats s;
  auto ranges = ComputeLiveRanges(g);
  int n = static_cast<int>(g.nodes().size());
  std::vector<std::array<int64_t, kNumMemCategories>> live(std::max(n, 1));
  const int act = static_cast<int>(MemCategory::kActivations);
  int64_t transient_end = 0;  // in the activations arena
  for (const auto& [v, lr] : ranges) {
    ZT_CHECK(v->offset.has_value()) << "value %" << v->name << " is not planned; run the memory planner";
    int c = static_cast<int>(v->category);
    int64_t size = static_cast<int64_t>(AlignedBytes(v->nbytes()));
    if (v->persistent()) {
      s.persistent_bytes[c] = std::max(s.persistent_bytes[c], *v->offset + size);
    } else {
      transient_end = std::max(transient_end, *v->offset + size);
    }
    int from = std::max(lr.def, 0), to = std::min(lr.end, n - 1);
    for (int i = from; i <= to; ++i) live[i][c] += size;
    if (n == 0) live[0][c] += size;
  }
  int ws = static_cast<int>(MemCategory::kWorkspace);
  for (int i = 0; i < n; ++i) {
    int64_t w = static_cast<int64_t>(AlignedBytes(ir::NodeWorkspace(*g.nodes()[i], target)));
    s.workspace_bytes = std::max(s.workspace_bytes, w);
    live[i][ws] += w;
  }
  // The transient arena starts after the persistent activations; the workspace region ends it.
  transient_end = std::max(transient_end, s.persistent_bytes[act]);
  s.transient_bytes = transient_end - s.persistent_bytes[act] + s.workspace_bytes;
  s.arena_bytes = s.persistent_bytes;
  s.arena_bytes[act] += s.transient_bytes;
  for (int c = 0; c < kNumMemCategories; ++c) s.arena_total += s.arena_bytes[c];
  for (auto& at : live) {
    int64_t total = 0;
    for (int c = 0; c < kNumMemCategories; ++c) {
      s.live_peak[c] = std::max(s.live_peak[c], at[c]);
      total += at[c];
    }
    s.live_peak_total = std::max(s.live_peak_total, total);
  }
  return s;
}

std::string PlanStats::ToString() const {
  std::string out;
  for (int c = 0; c < kNumMemCategories; ++c) {
    out += std::string(MemCategoryName(static_cast<MemCategory>(c))) + ": arena " +
           std::to_string(arena_bytes[c]) + " B (persistent " + std::to_string(persistent_bytes[c]) +
           " B), live peak " + std::to_string(live_peak[c]) + " B\n";
  }
  out += "transient arena (under activations): " + std::to_string(transient_bytes) + " B, workspace region " +
         std::to_string(workspace_bytes) + " B\n";
  out += "total: arena " + std::to_string(arena_total) + " B, live peak " + std::to_string(live_peak_total) + " B\n";
  return out;
}

}  // namespace zt::passes
