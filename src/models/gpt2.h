// GPT-2: learned positions, pre-LayerNorm blocks, GELU (tanh) MLP, tied input/output embeddings.
// Parameter names and layouts follow Hugging Face's GPT2LMHeadModel (Conv1D weights are [in, out]).
#pragma once

#include <cstdint>

#include "models/model.h"

namespace zt::models {

struct Gpt2Config {
  int64_t vocab_size = 50257;
  int64_t n_positions = 1024;
  int64_t n_embd = 768;
  int64_t n_layer = 12;
  int64_t n_head = 12;
  double layer_norm_epsilon = 1e-5;
};

// Validates the config (positive sizes, n_embd % n_head == 0, seq <= n_positions); a bad config
// is an InvalidArgument naming the key.
Status ValidateGpt2(const Gpt2Config& c, const BuildOptions& o);
StatusOr<BuiltModel> BuildGpt2(ir::Builder& b, const Gpt2Config& c, const BuildOptions& o);

}  // namespace zt::models
