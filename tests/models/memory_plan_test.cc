// The static memory plan of a whole training step (tiny GPT-2: forward, backward, AdamW) predicts
// exactly what the allocator measures: the arena total in arena mode, the live peak (per category
// and in total) in dynamic mode. Both modes give bit-identical losses and parameters.
#include <gtest/gtest.h>

#include <cstring>

#include "backend/cpu/cpu_backend.h"
#include "models/gpt2.h"
#include "models/init.h"
#include "runtime/engine.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

struct StepResult {
  std::vector<float> losses;
  std::vector<char> params;  // every parameter's bytes after the steps
  MemoryStats::Snapshot peaks;
};

StepResult Train(ExecMemoryMode mode, passes::PlanStats* plan) {
  models::Gpt2Config c;
  c.vocab_size = 50;
  c.n_positions = 16;
  c.n_embd = 32;
  c.n_layer = 2;
  c.n_head = 4;
  auto g = std::make_unique<ir::Graph>("gpt2");
  ir::Builder b(g.get());
  auto m = models::BuildGpt2(b, c, {.batch = 2, .seq = 8});
  ZT_CHECK(m.ok());
  CpuBackend backend;
  auto t = Engine::Create(std::move(g), {m->tokens, m->targets, m->loss}, {}, backend, {}, {.memory = mode});
  ZT_CHECK(t.ok()) << t.status().ToString();
  ZT_CHECK_OK((*t)->InitParams([&](const std::string& name, const Tensor& host) {
    models::InitParam(name, host, {.std = 0.02, .n_layer = c.n_layer, .seed = 7});
  }));
  StepResult r;
  for (int step = 0; step < 3; ++step) {
    auto tok = testing::RandomInts(16, 100 + step, 0, 50), tgt = testing::RandomInts(16, 200 + step, 0, 50);
    auto stats = (*t)->TrainStep([&](int, std::vector<int32_t>& tokens, std::vector<int32_t>& targets) {
      tokens.assign(tok.begin(), tok.end());
      targets.assign(tgt.begin(), tgt.end());
    });
    ZT_CHECK(stats.ok()) << stats.status().ToString();
    r.losses.push_back(static_cast<float>(stats->loss));
  }
  for (const auto& v : (*t)->program().graph().values()) {
    if (v->kind != ir::ValueKind::kParam) continue;
    Tensor x = (*t)->executor().tensor(v.get());
    const char* p = static_cast<const char*>(x.data);
    r.params.insert(r.params.end(), p, p + x.nbytes());
  }
  r.peaks = backend.stats().Snap();
  *plan = (*t)->program().plan();
  return r;
}

TEST(MemoryPlan, TinyGpt2StepPredictedPeakEqualsMeasured) {
  passes::PlanStats arena_plan, dynamic_plan;
  StepResult arena = Train(ExecMemoryMode::kArena, &arena_plan);
  StepResult dynamic = Train(ExecMemoryMode::kDynamic, &dynamic_plan);
  EXPECT_EQ(arena.peaks.peak_total, arena_plan.arena_total);
  EXPECT_EQ(dynamic.peaks.peak_total, dynamic_plan.live_peak_total);
  for (int c = 0; c < kNumMemCategories; ++c) {
    EXPECT_EQ(arena.peaks.peak[c], arena_plan.arena_bytes[c]) << MemCategoryName(static_cast<MemCategory>(c));
    EXPECT_EQ(dynamic.peaks.peak[c], dynamic_plan.live_peak[c]) << MemCategoryName(static_cast<MemCategory>(c));
  }
  // The plan reuses memory: the arena is far below the sum of every value's size.
  EXPECT_LT(arena_plan.arena_total, 2 * arena_plan.live_peak_total);
  EXPECT_EQ(arena.losses, dynamic.losses);
  EXPECT_TRUE(arena.params == dynamic.params) << "arena and dynamic runs must be bit-identical";
  EXPECT_LT(arena.losses.back(), arena.losses.front());
}

}  // namespace
}  // namespace zt
