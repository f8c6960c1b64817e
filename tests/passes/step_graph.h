// The step graph the pass tests rewrite: a tiny GPT-2 or Llama (kStepGraphLayers blocks), with its
// backward and optimizer step as the engine builds them, sharded as the engine shards it for
// `world` ranks at ZeRO `stage` (nothing at stage 0 on one rank). Invariant: the graph verifies.
#pragma once

#include <memory>
#include <string>

#include "ir/verifier.h"
#include "models/gpt2.h"
#include "models/llama.h"
#include "runtime/engine.h"

namespace zt::passes::testing {

inline constexpr int64_t kStepGraphLayers = 3;

inline std::unique_ptr<ir::Graph> StepGraph(const std::string& model, DType dtype, int stage = 0, int64_t world = 1) {
  auto g = std::make_unique<ir::Graph>(model);
  ir::Builder b(g.get());
  models::BuildOptions bo{.batch = 2, .seq = 8, .dtype = dtype};
  StatusOr<models::BuiltModel> m = InvalidArgument("unknown model " + model);
  if (model == "gpt2") {
    models::Gpt2Config c;
    c.vocab_size = 37;
    c.n_positions = 8;
    c.n_embd = 16;
    c.n_layer = kStepGraphLayers;
    c.n_head = 2;
    m = models::BuildGpt2(b, c, bo);
  } else {
    models::LlamaConfig c;
    c.vocab_size = 37;
    c.hidden_size = 16;
    c.intermediate_size = 24;
    c.num_hidden_layers = kStepGraphLayers;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 8;
    m = models::BuildLlama(b, c, bo);
  }
  ZT_CHECK(m.ok()) << m.status().ToString();
  EngineOptions o;
  o.precision = dtype == DType::kBF16 ? config::Precision::kBF16
                : dtype == DType::kF16 ? config::Precision::kF16
                                       : config::Precision::kF32;
  o.zero_stage = stage;
  ZT_CHECK_OK(Engine::BuildStepGraph(*g, {m->tokens, m->targets, m->loss}, o));
  for (auto& p : Engine::ShardingPasses(o, world)) ZT_CHECK(p->Run(*g).ok());
  ZT_CHECK_OK(ir::Verify(*g));
  return g;
}

}  // namespace zt::passes::testing
