// Llama: RMSNorm, RoPE, SwiGLU MLP, grouped-query attention, untied output head (unless
// tie_word_embeddings). Parameter names and layouts follow Hugging Face's LlamaForCausalLM
// (nn.Linear weights are [out, in]).
#pragma once

#include <cstdint>

#include "models/model.h"

namespace zt::models {

struct LlamaConfig {
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;
  int64_t max_position_embeddings = 4096;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
};

Status ValidateLlama(const LlamaConfig& c, const BuildOptions& o);
StatusOr<BuiltModel> BuildLlama(ir::Builder& b, const LlamaConfig& c, const BuildOptions& o);

}  // namespace zt::models
