// What a model builder returns: the graph values a training step and the tests need. Builders emit
// the forward graph (tokens -> logits -> loss) with parameters named as in Hugging Face
// checkpoints, so weights load and export by name.
#pragma once

#include <vector>

#include "ir/builder.h"

namespace zt::models {

struct BuiltModel {
  ir::Value* tokens = nullptr;   // i32 [B, T] input
  ir::Value* targets = nullptr;  // i32 [B, T] input (next tokens; ignore_index -100 masks)
  ir::Value* logits = nullptr;   // [B, T, V]
  ir::Value* loss = nullptr;     // f32 [] mean cross-entropy
  std::vector<ir::Value*> params;
};

struct BuildOptions {
  int64_t batch = 1;
  int64_t seq = 1;
  DType dtype = DType::kF32;  // parameter and activation dtype
};

// InvalidArgument "<family> config: <key> must be > 0, is <v>" unless v > 0.
Status RequirePositive(int64_t v, const char* family, const char* key);

}  // namespace zt::models
