// The CPU training demo.
#include "cli/demo.h"

#include <chrono>
#include <cstdio>
#include <random>

#include "backend/cpu/cpu_backend.h"
#include "data/markov.h"
#include "models/gpt2.h"
#include "models/init.h"
#include "runtime/engine.h"

namespace zt::cli {

int RunDemo(const DemoOptions& o) {
  models::Gpt2Config c;
  c.vocab_size = 64;
  c.n_positions = 32;
  c.n_embd = 64;
  c.n_layer = 2;
  c.n_head = 4;
  const int64_t batch = 8, seq = 32;
  data::MarkovCorpus corpus(c.vocab_size, 2, o.seed);

  auto g = std::make_unique<ir::Graph>("gpt2-demo");
  ir::Builder b(g.get());
  auto m = models::BuildGpt2(b, c, {.batch = batch, .seq = seq});
  if (!m.ok()) {
    std::fprintf(stderr, "ztrain: error: %s\n", m.status().ToString().c_str());
    return 1;
  }
  CpuBackend backend;
  EngineOptions eo;
  eo.optimizer.weight_decay = 0.0;
  eo.optimizer.lr = o.lr;
  eo.scheduler.type = "WarmupLR";
  eo.scheduler.warmup_min_lr = 0;
  eo.scheduler.warmup_max_lr = o.lr;
  eo.scheduler.warmup_num_steps = 20;
  eo.scheduler.warmup_type = "linear";
  auto trainer = Engine::Create(std::move(g), {m->tokens, m->targets, m->loss}, eo, backend);
  if (!trainer.ok()) {
    std::fprintf(stderr, "ztrain: error: %s\n", trainer.status().ToString().c_str());
    return 1;
  }
  Engine& t = **trainer;
  Status st = t.InitParams([&](const ir::Value& p, const Tensor& host) {
    models::InitParam(p.name, host, {.std = 0.02, .n_layer = c.n_layer, .seed = o.seed});
  });
  if (!st.ok()) {
    std::fprintf(stderr, "ztrain: error: %s\n", st.ToString().c_str());
    return 1;
  }
  std::printf("ztrain demo: GPT-2 (%lld layers, d=%lld, vocab %lld), batch %lld x %lld, %s\n",
              static_cast<long long>(c.n_layer), static_cast<long long>(c.n_embd),
              static_cast<long long>(c.vocab_size), static_cast<long long>(batch), static_cast<long long>(seq),
              backend.Describe().c_str());
  std::printf("synthetic Markov corpus: loss floor ln(2) = %.4f; %.1f MFLOP per step; memory plan %.2f MiB\n",
              corpus.LossFloor(), t.program().flops_per_step() / 1e6, t.program().plan().arena_total / 1048576.0);
  std::mt19937_64 rng(o.seed + 1);
  auto start = std::chrono::steady_clock::now();
  for (int64_t step = 1; step <= o.steps; ++step) {
    auto stats = t.TrainStep([&](int, std::vector<int32_t>& tok, std::vector<int32_t>& tgt) {
      corpus.Sample(batch, seq, rng, tok, tgt);
    });
    if (!stats.ok()) {
      std::fprintf(stderr, "ztrain: error: %s\n", stats.status().ToString().c_str());
      return 1;
    }
    if (step % o.print_every == 0 || step == 1 || step == o.steps) {
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("step %4lld  loss %.4f  (floor %.4f)  %.1f steps/s\n", static_cast<long long>(step), stats->loss,
                  corpus.LossFloor(), static_cast<double>(step) / secs);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace zt::cli
