// Hugging Face config.json <-> ModelConfig (the model family and its builder config).
// Invariant: a config is accepted only when ztrain builds exactly the architecture Hugging Face
// would build from it. Keys that would change the architecture in ways ztrain does not support
// (rope_scaling, biases, other activations, ...) are errors naming the key and value; keys that do
// not affect the trained function (token ids, dtype, dropout: ztrain trains without it, ...) are
// accepted; any other key is returned as a warning, never printed. WriteHfConfig emits a file that
// transformers' AutoConfig loads and that ParseHfConfig reads back unchanged and without warnings.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/builder.h"
#include "models/gpt2.h"
#include "models/llama.h"

namespace zt::models {

enum class ModelFamily { kGpt2, kLlama };
const char* ModelFamilyName(ModelFamily f);  // "gpt2", "llama" (the HF model_type)

struct ModelConfig {
  ModelFamily family = ModelFamily::kGpt2;
  Gpt2Config gpt2;    // used when family == kGpt2
  LlamaConfig llama;  // used when family == kLlama
  std::vector<std::string> warnings;  // from parsing: unknown keys, one message each
};

// `label` (usually the path) prefixes every message.
StatusOr<ModelConfig> ParseHfConfig(const nlohmann::json& j, const std::string& label);
// `path` is a config.json file, or a directory holding one.
StatusOr<ModelConfig> LoadHfConfig(const std::string& path);

// The config.json text for `c` (model_type, architectures, every architecture key). torch_dtype
// records the dtype the weights beside it are stored in.
std::string HfConfigText(const ModelConfig& c, DType torch_dtype = DType::kF32);
// Writes HfConfigText atomically.
Status WriteHfConfig(const ModelConfig& c, const std::string& path, DType torch_dtype = DType::kF32);

// Builds the family's graph (BuildGpt2 / BuildLlama).
StatusOr<BuiltModel> BuildModel(ir::Builder& b, const ModelConfig& c, const BuildOptions& o);
bool TiedEmbeddings(const ModelConfig& c);  // GPT-2 always; Llama when tie_word_embeddings

}  // namespace zt::models
