// Hugging Face config.json parsing and writing for the GPT-2 and Llama families.
// Every key is classified: architecture keys are read and type-checked, unsupported architecture
// variants are errors, known harmless keys are skipped, anything else is a warning.
#include "models/hf_config.h"

#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace zt::models {
namespace {

using json = nlohmann::json;

constexpr int64_t kMaxSize = 2147483647;  // any size key above this is surely a mistake
constexpr uintmax_t kMaxConfigBytes = 64ull << 20;

// Keys every PretrainedConfig may carry that do not change the function ztrain trains: token ids,
// generation settings, labels, bookkeeping, dropout (ztrain trains without dropout).
const std::set<std::string>& CommonHarmlessKeys() {
  static const std::set<std::string> keys = {
      "architectures", "model_type", "torch_dtype", "dtype", "transformers_version", "_name_or_path",
      "use_cache", "initializer_range", "bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id",
      "decoder_start_token_id", "return_dict", "output_hidden_states", "output_attentions", "torchscript",
      "use_bfloat16", "tf_legacy_loss", "chunk_size_feed_forward", "is_encoder_decoder", "is_decoder",
      "cross_attention_hidden_size", "tie_encoder_decoder", "max_length", "min_length", "do_sample",
      "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty", "temperature", "top_k", "top_p",
      "typical_p", "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
      "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences", "output_scores",
      "return_dict_in_generate", "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values",
      "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens", "finetuning_task",
      "id2label", "label2id", "tokenizer_class", "prefix", "problem_type", "task_specific_params",
      "_attn_implementation", "_commit_hash"};
  return keys;
}

const std::set<std::string>& Gpt2HarmlessKeys() {
  static const std::set<std::string> keys = {
      "resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_type", "summary_use_proj", "summary_activation",
      "summary_proj_to_labels", "summary_first_dropout", "reorder_and_upcast_attn"};
  return keys;
}

const std::set<std::string>& LlamaHarmlessKeys() {
  static const std::set<std::string> keys = {"attention_dropout", "pretraining_tp"};
  return keys;
}

std::string Show(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 240) s = s.substr(0, 237) + "...";
  return s;
}

// Reads typed keys from the config object and remembers which keys were looked at.
class KeyReader {
 public:
  KeyReader(const json& j, std::string label) : j_(j), label_(std::move(label)) {}

  // The value, or nullptr when absent or null. Marks the key as known.
  const json* Get(const std::string& key) {
    seen_.insert(key);
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  bool Present(const std::string& key) { return Get(key) != nullptr; }

  Status Missing(const std::string& key, const std::string& model_type) const {
    return InvalidArgument(label_ + ": missing " + key + " (required for model_type \"" + model_type +
                           "\"); add it to the config");
  }
  Status WrongType(const std::string& key, const json& v, const char* want) const {
    return InvalidArgument(label_ + ": " + key + " must be " + want + ", is " + Show(v) + " (" + v.type_name() + ")");
  }
  Status Unsupported(const std::string& key, const json& v, const std::string& why) const {
    return InvalidArgument(label_ + ": " + key + " = " + Show(v) + " is not supported by ztrain: " + why);
  }

  // A positive integer size. `required` false leaves *out unchanged when absent.
  Status Size(const std::string& key, int64_t* out, bool required, const std::string& model_type) {
    const json* v = Get(key);
    if (!v) return required ? Missing(key, model_type) : OkStatus();
    if (!v->is_number_integer()) return WrongType(key, *v, "an integer");
    if (!Integer(*v, out) || *out > kMaxSize)
      return InvalidArgument(label_ + ": " + key + " = " + Show(*v) + " is too large (at most " +
                             std::to_string(kMaxSize) + ")");
    if (*out <= 0) return InvalidArgument(label_ + ": " + key + " must be > 0, is " + std::to_string(*out));
    return OkStatus();
  }

  // An integer JSON value as int64 (false when it does not fit).
  static bool Integer(const json& v, int64_t* out) {
    if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return false;
      *out = static_cast<int64_t>(u);
      return true;
    }
    *out = v.get<int64_t>();
    return true;
  }

  // A positive finite number (integers accepted).
  Status Positive(const std::string& key, double* out) {
    const json* v = Get(key);
    if (!v) return OkStatus();
    if (!v->is_number()) return WrongType(key, *v, "a number");
    double d = v->get<double>();
    if (!std::isfinite(d) || d <= 0) return InvalidArgument(label_ + ": " + key + " must be > 0, is " + Show(*v));
    *out = d;
    return OkStatus();
  }

  Status Bool(const std::string& key, bool* out) {
    const json* v = Get(key);
    if (!v) return OkStatus();
    if (!v->is_boolean()) return WrongType(key, *v, "true or false");
    *out = v->get<bool>();
    return OkStatus();
  }

  // A boolean key that ztrain supports only with value `want`.
  Status RequireBool(const std::string& key, bool want, const std::string& why) {
    const json* v = Get(key);
    if (!v) return OkStatus();
    if (!v->is_boolean()) return WrongType(key, *v, "true or false");
    if (v->get<bool>() != want) return Unsupported(key, *v, why);
    return OkStatus();
  }

  // A key that must be absent, null or empty (an object or array without entries).
  Status RequireEmpty(const std::string& key, const std::string& why) {
    const json* v = Get(key);
    if (!v || ((v->is_object() || v->is_array()) && v->empty())) return OkStatus();
    return Unsupported(key, *v, why);
  }

  // Warnings for keys neither read nor known to be harmless.
  std::vector<std::string> UnknownKeys(const std::set<std::string>& family_harmless, const std::string& mt) const {
    std::vector<std::string> w;
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      const std::string& k = it.key();
      if (seen_.count(k) || CommonHarmlessKeys().count(k) || family_harmless.count(k)) continue;
      w.push_back(label_ + ": unknown key '" + k + "' = " + Show(it.value()) + " ignored; ztrain does not know it for model_type \"" +
                  mt + "\": check that it does not change the architecture");
    }
    return w;
  }

  const std::string& label() const { return label_; }

 private:
  const json& j_;
  std::string label_;
  std::set<std::string> seen_;
};

Status ParseGpt2(KeyReader& r, Gpt2Config* c) {
  const std::string mt = "gpt2";
  ZT_RETURN_IF_ERROR(r.Size("vocab_size", &c->vocab_size, true, mt));
  ZT_RETURN_IF_ERROR(r.Size("n_embd", &c->n_embd, true, mt));
  ZT_RETURN_IF_ERROR(r.Size("n_layer", &c->n_layer, true, mt));
  ZT_RETURN_IF_ERROR(r.Size("n_head", &c->n_head, true, mt));
  bool has_pos = r.Present("n_positions"), has_ctx = r.Present("n_ctx");
  if (!has_pos && !has_ctx) return r.Missing("n_positions", mt);
  int64_t ctx = 0;
  if (has_pos) ZT_RETURN_IF_ERROR(r.Size("n_positions", &c->n_positions, true, mt));
  if (has_ctx) ZT_RETURN_IF_ERROR(r.Size("n_ctx", &ctx, true, mt));
  if (!has_pos) c->n_positions = ctx;
  if (has_ctx && ctx != c->n_positions)
    return InvalidArgument(r.label() + ": n_ctx = " + std::to_string(ctx) + " differs from n_positions = " +
                           std::to_string(c->n_positions) + "; ztrain needs them equal (remove n_ctx)");
  ZT_RETURN_IF_ERROR(r.Positive("layer_norm_epsilon", &c->layer_norm_epsilon));
  if (const json* v = r.Get("activation_function")) {
    if (!v->is_string()) return r.WrongType("activation_function", *v, "a string");
    std::string a = v->get<std::string>();
    if (a != "gelu_new" && a != "gelu_pytorch_tanh")
      return r.Unsupported("activation_function", *v,
                           "ztrain's GPT-2 uses the tanh GELU (gelu_new or gelu_pytorch_tanh)");
  }
  if (const json* v = r.Get("n_inner")) {
    if (!v->is_number_integer()) return r.WrongType("n_inner", *v, "an integer or null");
    int64_t n = 0;
    if (!KeyReader::Integer(*v, &n) || n != 4 * c->n_embd)
      return r.Unsupported("n_inner", *v, "the MLP width must be 4 * n_embd = " + std::to_string(4 * c->n_embd) +
                                              " (or null)");
  }
  ZT_RETURN_IF_ERROR(r.RequireBool("scale_attn_weights", true, "attention scores are always scaled by 1/sqrt(head_dim)"));
  ZT_RETURN_IF_ERROR(r.RequireBool("scale_attn_by_inverse_layer_idx", false,
                                   "per-layer attention scaling is not implemented; set it to false"));
  ZT_RETURN_IF_ERROR(r.RequireBool("tie_word_embeddings", true,
                                   "ztrain's GPT-2 always ties the output head to transformer.wte"));
  return OkStatus();
}

Status ParseLlama(KeyReader& r, LlamaConfig* c) {
  const std::string mt = "llama";
  ZT_RETURN_IF_ERROR(r.Size("vocab_size", &c->vocab_size, true, mt));
  ZT_RETURN_IF_ERROR(r.Size("hidden_size", &c->hidden_size, true, mt));
  ZT_RETURN_IF_ERROR(r.Size("intermediate_size", &c->intermediate_size, true, mt));
  ZT_RETURN_IF_ERROR(r.Size("num_hidden_layers", &c->num_hidden_layers, true, mt));
  ZT_RETURN_IF_ERROR(r.Size("num_attention_heads", &c->num_attention_heads, true, mt));
  c->num_key_value_heads = c->num_attention_heads;  // HF's default
  ZT_RETURN_IF_ERROR(r.Size("num_key_value_heads", &c->num_key_value_heads, false, mt));
  ZT_RETURN_IF_ERROR(r.Size("max_position_embeddings", &c->max_position_embeddings, true, mt));
  c->rope_theta = 10000.0;  // HF's defaults
  c->rms_norm_eps = 1e-6;
  c->tie_word_embeddings = false;
  ZT_RETURN_IF_ERROR(r.Positive("rope_theta", &c->rope_theta));
  ZT_RETURN_IF_ERROR(r.Positive("rms_norm_eps", &c->rms_norm_eps));
  ZT_RETURN_IF_ERROR(r.Bool("tie_word_embeddings", &c->tie_word_embeddings));
  if (const json* v = r.Get("hidden_act")) {
    if (!v->is_string()) return r.WrongType("hidden_act", *v, "a string");
    if (v->get<std::string>() != "silu") return r.Unsupported("hidden_act", *v, "ztrain's Llama MLP is SwiGLU (silu)");
  }
  if (const json* v = r.Get("rope_scaling"))
    return r.Unsupported("rope_scaling", *v, "ztrain implements plain RoPE only; set rope_scaling to null");
  if (const json* v = r.Get("rope_parameters")) {  // transformers >= 5 moves rope_theta here
    if (!v->is_object()) return r.WrongType("rope_parameters", *v, "an object");
    auto type = v->find("rope_type");
    if (type != v->end() && !(type->is_string() && type->get<std::string>() == "default"))
      return r.Unsupported("rope_parameters", *v, "only rope_type \"default\" (plain RoPE) is implemented");
    for (auto it = v->begin(); it != v->end(); ++it) {
      if (it.key() == "rope_type") continue;
      if (it.key() != "rope_theta") return r.Unsupported("rope_parameters", *v, "unknown entry '" + it.key() + "'");
      if (!it->is_number() || !(it->get<double>() > 0))
        return r.WrongType("rope_parameters.rope_theta", *it, "a positive number");
      double t = it->get<double>();
      if (r.Present("rope_theta") && t != c->rope_theta)
        return InvalidArgument(r.label() + ": rope_parameters.rope_theta = " + Show(*it) +
                               " differs from rope_theta = " + Show(json(c->rope_theta)) + "; keep one of them");
      c->rope_theta = t;
    }
  }
  ZT_RETURN_IF_ERROR(r.RequireBool("attention_bias", false, "ztrain's Llama projections have no bias"));
  ZT_RETURN_IF_ERROR(r.RequireBool("mlp_bias", false, "ztrain's Llama MLP has no bias"));
  if (const json* v = r.Get("head_dim")) {
    if (!v->is_number_integer()) return r.WrongType("head_dim", *v, "an integer or null");
    int64_t want = c->hidden_size / c->num_attention_heads;
    int64_t n = 0;
    if (c->hidden_size % c->num_attention_heads != 0 || !KeyReader::Integer(*v, &n) || n != want)
      return r.Unsupported("head_dim", *v, "the head dimension must be hidden_size / num_attention_heads = " +
                                               std::to_string(c->hidden_size) + " / " +
                                               std::to_string(c->num_attention_heads));
  }
  return OkStatus();
}

const char* TorchDTypeName(DType t) {
  switch (t) {
    case DType::kBF16: return "bfloat16";
    case DType::kF16: return "float16";
    default: return "float32";
  }
}

}  // namespace

const char* ModelFamilyName(ModelFamily f) { return f == ModelFamily::kGpt2 ? "gpt2" : "llama"; }

StatusOr<ModelConfig> ParseHfConfig(const nlohmann::json& j, const std::string& label) {
  if (!j.is_object()) return InvalidArgument(label + ": a config.json must be a JSON object, is " + Show(j));
  KeyReader r(j, label);
  const json* mt = r.Get("model_type");
  if (!mt) return InvalidArgument(label + ": missing model_type; ztrain supports \"gpt2\" and \"llama\"");
  if (!mt->is_string()) return r.WrongType("model_type", *mt, "a string");
  std::string type = mt->get<std::string>();
  ModelConfig c;
  ZT_RETURN_IF_ERROR(r.RequireEmpty("quantization_config", "ztrain trains unquantized weights"));
  ZT_RETURN_IF_ERROR(r.RequireEmpty("pruned_heads", "ztrain builds every attention head"));
  ZT_RETURN_IF_ERROR(r.RequireBool("add_cross_attention", false, "ztrain builds decoder-only models"));
  if (type == "gpt2") {
    c.family = ModelFamily::kGpt2;
    ZT_RETURN_IF_ERROR(ParseGpt2(r, &c.gpt2));
    ZT_RETURN_IF_ERROR(ValidateGpt2(c.gpt2, {}).WithContext(label));
    c.warnings = r.UnknownKeys(Gpt2HarmlessKeys(), type);
  } else if (type == "llama") {
    c.family = ModelFamily::kLlama;
    ZT_RETURN_IF_ERROR(ParseLlama(r, &c.llama));
    ZT_RETURN_IF_ERROR(ValidateLlama(c.llama, {}).WithContext(label));
    c.warnings = r.UnknownKeys(LlamaHarmlessKeys(), type);
  } else {
    return InvalidArgument(label + ": model_type = " + Show(*mt) +
                           " is not supported; ztrain builds \"gpt2\" and \"llama\" models");
  }
  return c;
}

StatusOr<ModelConfig> LoadHfConfig(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string file = fs::is_directory(path, ec) ? (fs::path(path) / "config.json").string() : path;
  if (!fs::exists(file, ec)) return NotFound("model config " + file + " does not exist");
  uintmax_t size = fs::file_size(file, ec);
  if (ec) return NotFound("cannot read model config " + file + ": " + ec.message());
  if (size > kMaxConfigBytes)
    return InvalidArgument("model config " + file + " is " + std::to_string(size) +
                           " bytes; a config.json is small: is this the right file?");
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in.good() && !in.eof()) return NotFound("cannot read model config " + file);
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const std::exception& e) {
    return InvalidArgument("model config " + file + " is not valid JSON: " + e.what());
  }
  return ParseHfConfig(j, file);
}

std::string HfConfigText(const ModelConfig& c, DType torch_dtype) {
  nlohmann::ordered_json j;
  if (c.family == ModelFamily::kGpt2) {
    const Gpt2Config& g = c.gpt2;
    j["architectures"] = {"GPT2LMHeadModel"};
    j["model_type"] = "gpt2";
    j["vocab_size"] = g.vocab_size;
    j["n_positions"] = g.n_positions;
    j["n_embd"] = g.n_embd;
    j["n_layer"] = g.n_layer;
    j["n_head"] = g.n_head;
    j["n_inner"] = nullptr;
    j["activation_function"] = "gelu_new";
    j["layer_norm_epsilon"] = g.layer_norm_epsilon;
    j["resid_pdrop"] = 0.0;
    j["embd_pdrop"] = 0.0;
    j["attn_pdrop"] = 0.0;
    j["scale_attn_weights"] = true;
    j["scale_attn_by_inverse_layer_idx"] = false;
    j["reorder_and_upcast_attn"] = false;
    j["tie_word_embeddings"] = true;
  } else {
    const LlamaConfig& l = c.llama;
    j["architectures"] = {"LlamaForCausalLM"};
    j["model_type"] = "llama";
    j["vocab_size"] = l.vocab_size;
    j["hidden_size"] = l.hidden_size;
    j["intermediate_size"] = l.intermediate_size;
    j["num_hidden_layers"] = l.num_hidden_layers;
    j["num_attention_heads"] = l.num_attention_heads;
    j["num_key_value_heads"] = l.num_key_value_heads;
    j["head_dim"] = l.hidden_size / l.num_attention_heads;
    j["hidden_act"] = "silu";
    j["max_position_embeddings"] = l.max_position_embeddings;
    j["rms_norm_eps"] = l.rms_norm_eps;
    j["rope_theta"] = l.rope_theta;
    j["rope_scaling"] = nullptr;
    j["attention_bias"] = false;
    j["attention_dropout"] = 0.0;
    j["mlp_bias"] = false;
    j["tie_word_embeddings"] = l.tie_word_embeddings;
  }
  j["torch_dtype"] = TorchDTypeName(torch_dtype);
  return j.dump(2) + "\n";
}

Status WriteHfConfig(const ModelConfig& c, const std::string& path, DType torch_dtype) {
  return WriteFileAtomically(path, HfConfigText(c, torch_dtype));
}

StatusOr<BuiltModel> BuildModel(ir::Builder& b, const ModelConfig& c, const BuildOptions& o) {
  return c.family == ModelFamily::kGpt2 ? BuildGpt2(b, c.gpt2, o) : BuildLlama(b, c.llama, o);
}

bool TiedEmbeddings(const ModelConfig& c) {
  return c.family == ModelFamily::kGpt2 || c.llama.tie_word_embeddings;
}

}  // namespace zt::models
