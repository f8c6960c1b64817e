// Model weights in Hugging Face's layout: one model.safetensors, or shards
// model-0000i-of-0000N.safetensors with model.safetensors.index.json
// ({"metadata": {"total_size": N}, "weight_map": {tensor: shard}}), beside a config.json.
// Loading checks every parameter (present, same shape, convertible dtype) before the sink sees any,
// so a bad checkpoint never leaves a half-loaded model. Export never leaves a directory that looks
// complete but is not: the old index and config go first, each file is written atomically, and
// the index and config.json, the markers of a finished export, are written last.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "models/hf_config.h"
#include "models/safetensors.h"

namespace zt::models {

struct ParamSpec {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
};
std::vector<ParamSpec> ParamSpecs(const BuiltModel& m);
// The parameters of `c`'s model with every parameter in `dtype`.
StatusOr<std::vector<ParamSpec>> ModelParamSpecs(const ModelConfig& c, DType dtype = DType::kF32);

// Receives each parameter as a host tensor in the parameter's dtype (valid only during the call).
using WeightSink = std::function<Status(const std::string& name, const Tensor& host)>;

struct LoadResult {
  std::vector<std::string> files;     // safetensors files read
  std::vector<std::string> warnings;  // one per unused tensor (known non-parameters excepted)
};

// `path`: a .safetensors file, a model.safetensors.index.json, or a directory holding
// model.safetensors or model.safetensors.index.json (the single file wins, as in transformers).
// File tensors in f32/bf16/f16 convert to the parameter's float dtype (round to nearest even).
// A name missing in the file is also looked up without its base-model prefix ("transformer.",
// "model."), as transformers does for checkpoints saved from the base model.
// Ignored without warning: GPT-2's attn.bias / attn.masked_bias buffers, rotary_emb.inv_freq, and
// lm_head.weight when the model ties its head (a warning if it differs from the embeddings).
StatusOr<LoadResult> LoadWeights(const std::string& path, const std::vector<ParamSpec>& params,
                                 const WeightSink& sink);

inline constexpr uint64_t kDefaultMaxShardBytes = 5'000'000'000ull;  // transformers' "5GB"

// Writes `tensors` (the parameters of `config`'s model, checked by name and shape) to `dir`
// (created if needed): model.safetensors when they fit in max_shard_bytes, else shards of at most
// max_shard_bytes each (a larger tensor gets a shard of its own) and the index; then config.json.
// Stale weight files of an earlier export in `dir` are removed. Returns the files written.
StatusOr<std::vector<std::string>> ExportWeights(const std::string& dir, const ModelConfig& config,
                                                 const std::vector<TensorToWrite>& tensors,
                                                 uint64_t max_shard_bytes = kDefaultMaxShardBytes);

}  // namespace zt::models
