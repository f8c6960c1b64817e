// Hugging Face config.json parsing: real HF configs parse without warnings; every wrong type,
// bad value, unsupported architecture key and unknown model_type is an error naming the key (and
// the value); unknown keys are warnings; WriteHfConfig round-trips; every model config in
// configs/ parses and builds, with parameter counts from closed-form formulas.
#include "models/hf_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

namespace zt::models {
namespace {

using json = nlohmann::json;

// transformers' published config.json files (gpt2; Meta-Llama-3-8B; Llama-3.2-1B).
const char* kHfGpt2 = R"({"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
  "attn_pdrop": 0.1, "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256,
  "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024,
  "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1,
  "summary_activation": null, "summary_first_dropout": 0.1, "summary_proj_to_labels": true,
  "summary_type": "cls_index", "summary_use_proj": true,
  "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}}, "vocab_size": 50257})";
const char* kHfLlama8b = R"({"architectures": ["LlamaForCausalLM"], "attention_bias": false,
  "attention_dropout": 0.0, "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu",
  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 8192, "model_type": "llama", "num_attention_heads": 32,
  "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": null, "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.40.0.dev0", "use_cache": true, "vocab_size": 128256})";
const char* kHfLlama32_1b = R"({"architectures": ["LlamaForCausalLM"], "attention_bias": false,
  "attention_dropout": 0.0, "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
  "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
  "intermediate_size": 8192, "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8, "pretraining_tp": 1,
  "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
  "original_max_position_embeddings": 8192, "rope_type": "llama3"}, "rope_theta": 500000.0,
  "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.45.0.dev0",
  "use_cache": true, "vocab_size": 128256})";

StatusOr<ModelConfig> Parse(const json& j) { return ParseHfConfig(j, "test.json"); }

// The error for `j`, which must not parse.
std::string ErrorOf(const json& j) {
  auto c = Parse(j);
  EXPECT_FALSE(c.ok()) << j.dump();
  if (c.ok()) return "";
  EXPECT_NE(c.status().message().find("test.json"), std::string::npos) << c.status().message();
  return c.status().message();
}

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << "'" << (text) << "' lacks '" << (part) << "'"

TEST(HfConfig, ParsesPublishedGpt2Config) {
  auto c = Parse(json::parse(kHfGpt2));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->family, ModelFamily::kGpt2);
  EXPECT_EQ(c->gpt2.vocab_size, 50257);
  EXPECT_EQ(c->gpt2.n_positions, 1024);
  EXPECT_EQ(c->gpt2.n_embd, 768);
  EXPECT_EQ(c->gpt2.n_layer, 12);
  EXPECT_EQ(c->gpt2.n_head, 12);
  EXPECT_EQ(c->gpt2.layer_norm_epsilon, 1e-5);
  EXPECT_TRUE(c->warnings.empty()) << c->warnings.front();
  EXPECT_TRUE(TiedEmbeddings(*c));
}

TEST(HfConfig, ParsesPublishedLlamaConfig) {
  auto c = Parse(json::parse(kHfLlama8b));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->family, ModelFamily::kLlama);
  const LlamaConfig& l = c->llama;
  EXPECT_EQ(l.vocab_size, 128256);
  EXPECT_EQ(l.hidden_size, 4096);
  EXPECT_EQ(l.intermediate_size, 14336);
  EXPECT_EQ(l.num_hidden_layers, 32);
  EXPECT_EQ(l.num_attention_heads, 32);
  EXPECT_EQ(l.num_key_value_heads, 8);
  EXPECT_EQ(l.max_position_embeddings, 8192);
  EXPECT_EQ(l.rope_theta, 500000.0);
  EXPECT_EQ(l.rms_norm_eps, 1e-5);
  EXPECT_FALSE(l.tie_word_embeddings);
  EXPECT_FALSE(TiedEmbeddings(*c));
  EXPECT_TRUE(c->warnings.empty()) << c->warnings.front();
}

TEST(HfConfig, Llama32RopeScalingIsRejectedButTheShapeParses) {
  json j = json::parse(kHfLlama32_1b);
  std::string e = ErrorOf(j);
  EXPECT_HAS(e, "rope_scaling");
  EXPECT_HAS(e, "llama3");
  j["rope_scaling"] = nullptr;
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->llama.tie_word_embeddings);
  EXPECT_EQ(c->llama.num_key_value_heads, 8);
}

TEST(HfConfig, LlamaDefaultsFollowTransformers) {
  json j = {{"model_type", "llama"}, {"vocab_size", 100},         {"hidden_size", 64},
            {"intermediate_size", 96}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
            {"max_position_embeddings", 32}};
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->llama.num_key_value_heads, 4);
  EXPECT_EQ(c->llama.rope_theta, 10000.0);
  EXPECT_EQ(c->llama.rms_norm_eps, 1e-6);
  EXPECT_FALSE(c->llama.tie_word_embeddings);
  // transformers >= 5 keeps rope_theta in rope_parameters.
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 250000.0}};
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->llama.rope_theta, 250000.0);
  j["rope_theta"] = 1000.0;
  EXPECT_HAS(ErrorOf(j), "rope_theta");
}

TEST(HfConfig, GptNCtxAloneOrEqualIsAccepted) {
  json j = json::parse(kHfGpt2);
  j.erase("n_positions");
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->gpt2.n_positions, 1024);
  j["n_positions"] = 512;
  std::string e = ErrorOf(j);
  EXPECT_HAS(e, "n_ctx");
  EXPECT_HAS(e, "512");
}

TEST(HfConfig, MissingRequiredKeysAreNamed) {
  for (const char* key : {"vocab_size", "n_embd", "n_layer", "n_head"}) {
    json j = json::parse(kHfGpt2);
    j.erase(key);
    std::string e = ErrorOf(j);
    EXPECT_HAS(e, std::string("missing ") + key);
  }
  json g = json::parse(kHfGpt2);
  g.erase("n_positions");
  g.erase("n_ctx");
  EXPECT_HAS(ErrorOf(g), "missing n_positions");
  for (const char* key : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "max_position_embeddings"}) {
    json j = json::parse(kHfLlama8b);
    j.erase(key);
    EXPECT_HAS(ErrorOf(j), std::string("missing ") + key);
  }
}

TEST(HfConfig, WrongJsonTypesNameTheKey) {
  const std::vector<std::string> gpt2_keys = {"vocab_size", "n_positions", "n_ctx", "n_embd", "n_layer", "n_head",
                                              "layer_norm_epsilon", "activation_function", "n_inner",
                                              "scale_attn_weights", "tie_word_embeddings"};
  for (const auto& key : gpt2_keys) {
    for (const json& bad : {json("12"), json(json::array({1})), json(2.5)}) {
      if (key == "layer_norm_epsilon" && bad.is_number()) continue;  // a float is its type
      if (key == "activation_function" && bad.is_string()) continue;  // a string is its type
      json j = json::parse(kHfGpt2);
      j[key] = bad;
      std::string e = ErrorOf(j);
      EXPECT_HAS(e, key + " must be");
    }
  }
  const std::vector<std::string> llama_keys = {
      "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
      "num_key_value_heads", "max_position_embeddings", "rope_theta", "rms_norm_eps", "tie_word_embeddings",
      "hidden_act", "attention_bias", "mlp_bias", "head_dim"};
  for (const auto& key : llama_keys) {
    json j = json::parse(kHfLlama8b);
    j[key] = json::object({{"x", 1}});
    EXPECT_HAS(ErrorOf(j), key + " must be");
  }
  json j = json::parse(kHfLlama8b);
  j["model_type"] = 7;
  EXPECT_HAS(ErrorOf(j), "model_type must be a string");
}

TEST(HfConfig, BadValuesNameTheKey) {
  struct Case {
    const char* base;
    const char* key;
    json value;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {kHfGpt2, "n_layer", 0, "n_layer must be > 0"},
      {kHfGpt2, "n_head", -3, "n_head must be > 0, is -3"},
      {kHfGpt2, "vocab_size", 1000000000000ll, "vocab_size = 1000000000000 is too large"},
      {kHfGpt2, "n_embd", 770, "n_embd"},  // not divisible by n_head
      {kHfGpt2, "layer_norm_epsilon", -1e-5, "layer_norm_epsilon must be > 0"},
      {kHfLlama8b, "num_key_value_heads", 5, "num_key_value_heads"},
      {kHfLlama8b, "rms_norm_eps", 0, "rms_norm_eps must be > 0"},
      {kHfLlama8b, "rope_theta", -1, "rope_theta must be > 0"},
      {kHfLlama8b, "hidden_size", 4000, "hidden_size"},
  };
  for (const auto& c : cases) {
    json j = json::parse(c.base);
    j[c.key] = c.value;
    EXPECT_HAS(ErrorOf(j), c.expect);
  }
}

TEST(HfConfig, UnsupportedArchitectureKeysNameKeyAndValue) {
  struct Case {
    const char* base;
    const char* key;
    json value;
    std::string shown;  // how the value appears in the message
  };
  const std::vector<Case> cases = {
      {kHfGpt2, "activation_function", "relu", "\"relu\""},
      {kHfGpt2, "activation_function", "gelu", "\"gelu\""},
      {kHfGpt2, "n_inner", 1000, "1000"},
      {kHfGpt2, "scale_attn_by_inverse_layer_idx", true, "true"},
      {kHfGpt2, "scale_attn_weights", false, "false"},
      {kHfGpt2, "tie_word_embeddings", false, "false"},
      {kHfGpt2, "add_cross_attention", true, "true"},
      {kHfGpt2, "pruned_heads", json{{"0", {1, 2}}}, "{\"0\":[1,2]}"},
      {kHfLlama8b, "rope_scaling", json{{"type", "linear"}, {"factor", 2.0}}, "\"linear\""},
      {kHfLlama8b, "attention_bias", true, "true"},
      {kHfLlama8b, "mlp_bias", true, "true"},
      {kHfLlama8b, "hidden_act", "gelu", "\"gelu\""},
      {kHfLlama8b, "head_dim", 96, "96"},
      {kHfLlama8b, "quantization_config", json{{"quant_method", "gptq"}}, "gptq"},
      {kHfLlama8b, "rope_parameters", json{{"rope_type", "yarn"}, {"factor", 4.0}}, "yarn"},
  };
  for (const auto& c : cases) {
    json j = json::parse(c.base);
    j[c.key] = c.value;
    std::string e = ErrorOf(j);
    EXPECT_HAS(e, std::string(c.key) + " = ");
    EXPECT_HAS(e, c.shown);
    EXPECT_HAS(e, "not supported");
  }
  // The supported values of the same keys parse.
  json g = json::parse(kHfGpt2);
  g["activation_function"] = "gelu_pytorch_tanh";
  g["n_inner"] = 3072;
  g["scale_attn_by_inverse_layer_idx"] = false;
  g["pruned_heads"] = json::object();
  EXPECT_TRUE(Parse(g).ok());
  json l = json::parse(kHfLlama8b);
  l["head_dim"] = 128;
  l["mlp_bias"] = false;
  EXPECT_TRUE(Parse(l).ok());
}

TEST(HfConfig, UnsupportedModelTypesAreRejected) {
  for (const char* type : {"mistral", "bert", "gpt_neox", ""}) {
    json j = json::parse(kHfLlama8b);
    j["model_type"] = type;
    std::string e = ErrorOf(j);
    EXPECT_HAS(e, "model_type = \"" + std::string(type) + "\"");
  }
  json j = json::parse(kHfLlama8b);
  j.erase("model_type");
  EXPECT_HAS(ErrorOf(j), "missing model_type");
  EXPECT_HAS(ErrorOf(json::array({1, 2})), "must be a JSON object");
}

TEST(HfConfig, UnknownKeysAreWarningsNotErrors) {
  json j = json::parse(kHfLlama8b);
  j["sliding_window"] = 4096;
  j["my_custom_flag"] = "hello";
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->warnings.size(), 2u);
  EXPECT_HAS(c->warnings[0], "'my_custom_flag'");
  EXPECT_HAS(c->warnings[1], "'sliding_window'");
  EXPECT_HAS(c->warnings[1], "4096");
  // A Llama key in a GPT-2 config is unknown there.
  json g = json::parse(kHfGpt2);
  g["rope_theta"] = 10000.0;
  auto cg = Parse(g);
  ASSERT_TRUE(cg.ok());
  ASSERT_EQ(cg->warnings.size(), 1u);
  EXPECT_HAS(cg->warnings[0], "'rope_theta'");
}

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "zt_hf_config_" + std::to_string(::getpid()) + "_" + name;
}

TEST(HfConfig, LoadErrorsNameThePath) {
  auto c = LoadHfConfig(TempPath("does_not_exist.json"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_HAS(c.status().message(), "does_not_exist.json");
  std::string bad = TempPath("bad.json");
  std::ofstream(bad) << "{\"model_type\": \"gpt2\", ";
  c = LoadHfConfig(bad);
  ASSERT_FALSE(c.ok());
  EXPECT_HAS(c.status().message(), bad);
  EXPECT_HAS(c.status().message(), "not valid JSON");
  std::filesystem::remove(bad);
}

TEST(HfConfig, WriteThenLoadRoundTrips) {
  ModelConfig g;
  g.family = ModelFamily::kGpt2;
  g.gpt2 = {.vocab_size = 77, .n_positions = 33, .n_embd = 48, .n_layer = 3, .n_head = 6, .layer_norm_epsilon = 3e-6};
  ModelConfig l;
  l.family = ModelFamily::kLlama;
  l.llama = {.vocab_size = 91, .hidden_size = 96, .intermediate_size = 200, .num_hidden_layers = 3,
             .num_attention_heads = 6, .num_key_value_heads = 2, .max_position_embeddings = 40,
             .rope_theta = 123456.5, .rms_norm_eps = 1.5e-6, .tie_word_embeddings = true};
  std::string dir = TempPath("roundtrip");
  std::filesystem::create_directories(dir);
  for (const ModelConfig& c : {g, l}) {
    std::string path = dir + "/config.json";
    ASSERT_TRUE(WriteHfConfig(c, path, DType::kBF16).ok());
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
    auto back = LoadHfConfig(dir);  // a directory means its config.json
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_TRUE(back->warnings.empty()) << back->warnings.front();
    EXPECT_EQ(back->family, c.family);
    json text = json::parse(HfConfigText(c, DType::kBF16));
    EXPECT_EQ(text["torch_dtype"], "bfloat16");
    if (c.family == ModelFamily::kGpt2) {
      EXPECT_EQ(text["architectures"], json::array({"GPT2LMHeadModel"}));
      EXPECT_EQ(text["model_type"], "gpt2");
      const Gpt2Config &a = back->gpt2, &b = c.gpt2;
      EXPECT_EQ(a.vocab_size, b.vocab_size);
      EXPECT_EQ(a.n_positions, b.n_positions);
      EXPECT_EQ(a.n_embd, b.n_embd);
      EXPECT_EQ(a.n_layer, b.n_layer);
      EXPECT_EQ(a.n_head, b.n_head);
      EXPECT_EQ(a.layer_norm_epsilon, b.layer_norm_epsilon);
    } else {
      EXPECT_EQ(text["architectures"], json::array({"LlamaForCausalLM"}));
      EXPECT_EQ(text["model_type"], "llama");
      EXPECT_EQ(text["head_dim"], 16);
      const LlamaConfig &a = back->llama, &b = c.llama;
      EXPECT_EQ(a.vocab_size, b.vocab_size);
      EXPECT_EQ(a.hidden_size, b.hidden_size);
      EXPECT_EQ(a.intermediate_size, b.intermediate_size);
      EXPECT_EQ(a.num_hidden_layers, b.num_hidden_layers);
      EXPECT_EQ(a.num_attention_heads, b.num_attention_heads);
      EXPECT_EQ(a.num_key_value_heads, b.num_key_value_heads);
      EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
      EXPECT_EQ(a.rope_theta, b.rope_theta);
      EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);
      EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
    }
  }
  std::filesystem::remove_all(dir);
}

// Parameter counts in closed form, independent of the builders.
int64_t Gpt2ParamCount(const Gpt2Config& c) {
  int64_t C = c.n_embd;
  int64_t block = 2 * 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + (C * 4 * C + 4 * C) + (4 * C * C + C);
  return c.vocab_size * C + c.n_positions * C + c.n_layer * block + 2 * C;
}
int64_t LlamaParamCount(const LlamaConfig& c) {
  int64_t C = c.hidden_size, D = C / c.num_attention_heads, kv = c.num_key_value_heads * D;
  int64_t block = 2 * C + C * C + 2 * C * kv + C * C + 3 * C * c.intermediate_size;
  return c.vocab_size * C * (c.tie_word_embeddings ? 1 : 2) + c.num_hidden_layers * block + C;
}

TEST(HfConfig, EveryModelConfigInConfigsDirParsesAndBuilds) {
  std::map<std::string, int64_t> published = {
      {"gpt2-124m.json", 124439808},      {"gpt2-350m.json", 354823168},  // HF gpt2, gpt2-medium
      {"llama-1b-shape.json", 1235814400}, {"llama-8b-shape.json", 8030261248},  // Llama 3.2 1B, 3 8B
      {"tiny-gpt2.json", 108288},          {"tiny-llama.json", 82240}};  // as in docs/models.md
  std::set<std::string> seen;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(ZT_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(j.is_discarded()) << entry.path() << " is not valid JSON";
    if (!j.is_object() || !j.contains("model_type")) continue;  // a run config, not a model config
    std::string name = entry.path().filename().string();
    SCOPED_TRACE(name);
    seen.insert(name);
    auto c = LoadHfConfig(entry.path().string());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_TRUE(c->warnings.empty()) << c->warnings.front();
    ir::Graph g(name);
    ir::Builder b(&g);
    auto m = BuildModel(b, *c, {.batch = 1, .seq = 8});
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    int64_t count = 0;
    for (const ir::Value* p : m->params) count += p->shape.numel();
    int64_t formula = c->family == ModelFamily::kGpt2 ? Gpt2ParamCount(c->gpt2) : LlamaParamCount(c->llama);
    EXPECT_EQ(count, formula);
    if (published.count(name)) {
      EXPECT_EQ(count, published[name]);
    }
  }
  for (const auto& [name, count] : published) EXPECT_TRUE(seen.count(name)) << "configs/" << name << " is missing";
}

TEST(HfConfig, ReadyConfigsHaveTheDocumentedShapes) {
  auto load = [](const std::string& name) {
    auto c = LoadHfConfig(std::string(ZT_SOURCE_DIR) + "/configs/" + name);
    ZT_CHECK(c.ok()) << c.status().ToString();
    return *c;
  };
  Gpt2Config g = load("tiny-gpt2.json").gpt2;
  EXPECT_EQ(g.vocab_size, 64);
  EXPECT_EQ(g.n_positions, 64);
  EXPECT_EQ(g.n_embd, 64);
  EXPECT_EQ(g.n_layer, 2);
  EXPECT_EQ(g.n_head, 4);
  LlamaConfig l = load("tiny-llama.json").llama;
  EXPECT_EQ(l.vocab_size, 64);
  EXPECT_EQ(l.hidden_size, 64);
  EXPECT_EQ(l.num_hidden_layers, 2);
  EXPECT_EQ(l.num_attention_heads, 4);
  EXPECT_EQ(l.num_key_value_heads, 2);
  EXPECT_EQ(l.intermediate_size, 128);
  EXPECT_EQ(l.max_position_embeddings, 64);
  LlamaConfig one = load("llama-1b-shape.json").llama;
  EXPECT_EQ(one.rope_theta, 500000.0);
  EXPECT_EQ(one.rms_norm_eps, 1e-5);
  EXPECT_EQ(one.max_position_embeddings, 131072);
  EXPECT_TRUE(one.tie_word_embeddings);
  LlamaConfig eight = load("llama-8b-shape.json").llama;
  EXPECT_FALSE(eight.tie_word_embeddings);
  EXPECT_EQ(eight.max_position_embeddings, 8192);
  EXPECT_EQ(eight.num_key_value_heads, 8);
}

}  // namespace
}  // namespace zt::models
