// What a model builder returns: the graph values a training step and the tests need. Builders emit
// the forward graph (tokens -> logits -> loss) with parameters named as in Hugging Face
// checkpoints, so weights load and export by name. The LM head may compute logits over a
// vocabulary padded to a multiple of BuildOptions::vocab_multiple (fast GEMMs); the parameters
// keep the model's vocabulary V, and the padding columns never reach the loss or a gradient.
#pragma once

#include <vector>

#include "ir/builder.h"

namespace zt::models {

struct BuiltModel {
  ir::Value* tokens = nullptr;   // i32 [B, T] input
  ir::Value* targets = nullptr;  // i32 [B, T] input (next tokens; ignore_index -100 masks)
  ir::Value* logits = nullptr;   // [B, T, padded_vocab]; columns >= vocab are padding (0)
  ir::Value* loss = nullptr;     // f32 [] mean cross-entropy over the first `vocab` columns
  std::vector<ir::Value*> params;
  int64_t vocab = 0;             // the model's vocabulary V (parameters, token ids, targets)
  int64_t padded_vocab = 0;      // the logits' last dimension, a multiple of vocab_multiple >= V
  // Flops per micro-batch that the op costs count for the padding columns of the head's GEMMs
  // (forward: the logits; backward: their two gradient GEMMs). TFLOP/s and MFU leave them out, so
  // they count the model's real vocabulary, as the PyTorch peers do (50257 for GPT-2).
  double padding_flops_forward = 0;
  double padding_flops_backward = 0;
};

struct BuildOptions {
  int64_t batch = 1;
  int64_t seq = 1;
  DType dtype = DType::kF32;  // parameter and activation dtype
  // The head computes logits over the vocabulary rounded up to a multiple of this (1: no padding).
  // GEMMs with an odd vocabulary dimension (GPT-2's 50257) pick slow kernels; 50304 does not.
  int64_t vocab_multiple = 128;
};

// InvalidArgument "<family> config: <key> must be > 0, is <v>" unless v > 0.
Status RequirePositive(int64_t v, const char* family, const char* key);

// InvalidArgument naming vocab_multiple unless it is > 0.
Status ValidateBuildOptions(const BuildOptions& o, const char* family);

// `vocab` rounded up to a multiple of `multiple` (both > 0).
int64_t PaddedVocab(int64_t vocab, int64_t multiple);

// The weight of the LM head's matmul (logits = h @ W^T, h of `tokens` rows): `head` [V, C] itself
// when V is a multiple of `multiple`, else head concatenated along axis 0 with a zero constant
// [Vp - V, C]. The padding's logits are then 0 and head's gradient is the first V rows of the
// padded weight's (autodiff of concat is a split); the caller passes classes = V to cross_entropy.
// Sets m.vocab, m.padded_vocab and m's padding flops.
ir::Value* PadHead(ir::Builder& b, ir::Value* head, int64_t multiple, int64_t tokens, BuiltModel& m);

}  // namespace zt::models
