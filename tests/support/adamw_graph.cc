// AdamW update graphs for tests (adamw_graph.h).
#include "support/adamw_graph.h"

#include "ir/builder.h"
#include "ir/ops/adamw.h"

namespace zt::testing {

std::vector<std::pair<std::string, int64_t>> IndexedSizes(const std::vector<int64_t>& sizes) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (size_t i = 0; i < sizes.size(); ++i) out.push_back({std::to_string(i), sizes[i]});
  return out;
}

std::unique_ptr<ir::Graph> BuildAdamWGraph(const AdamWTensors& t, bool multi) {
  auto g = std::make_unique<ir::Graph>(multi ? "adamw_multi" : "adamw");
  ir::Builder b(g.get());
  ir::Value* s = b.Input("s", DType::kF32, Shape{ir::kAdamWScalars});
  ir::Value* ss = b.Input("ss", DType::kF32, Shape{});
  std::vector<ir::Value*> p, m, v, w, gr;
  for (const auto& [x, n] : t.suffix_and_size) {
    p.push_back(b.Param("p" + x, t.param, Shape{n}));
    gr.push_back(b.Input("g" + x, t.grad, Shape{n}));
    m.push_back(b.State("m" + x, DType::kF32, Shape{n}, MemCategory::kOptimizerState));
    v.push_back(b.State("v" + x, DType::kF32, Shape{n}, MemCategory::kOptimizerState));
    if (t.master) w.push_back(b.State("w" + x, DType::kF32, Shape{n}, MemCategory::kOptimizerState));
  }
  b.set_phase(ir::Phase::kOptimizer);
  ir::AttrMap attrs{{"beta1", t.beta1}, {"beta2", t.beta2}, {"eps", t.eps}, {"weight_decay", t.weight_decay}};
  if (multi) {
    std::vector<ir::Value*> in = {s, ss};
    for (const auto* role : {&p, &m, &v, &w, &gr}) in.insert(in.end(), role->begin(), role->end());
    attrs.Set("tensors", static_cast<int64_t>(p.size()));
    b.Emit("adamw_multi", in, attrs, "upd");
  } else {
    for (size_t i = 0; i < p.size(); ++i) {
      std::vector<ir::Value*> in = {p[i], gr[i], m[i], v[i], s, ss};
      if (t.master) in.push_back(w[i]);
      b.Emit("adamw", in, attrs, "upd" + t.suffix_and_size[i].first);
    }
  }
  return g;
}

}  // namespace zt::testing
