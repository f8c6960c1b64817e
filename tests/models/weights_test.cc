// Weights load/export: round trips of both families (single file and shards, every float dtype),
// f32 -> bf16/f16 rounding checked against hand-computed bits and against torch, re-exports that
// leave no stale files, a failed export that leaves nothing looking complete, every load error
// (missing parameter with or without a similar name, shape, dtype, missing shard, malformed index),
// known non-parameters, files written by PyTorch, and a Python reader checking the exports.
#include "models/weights.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "models/init.h"

namespace zt::models {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << "'" << (text) << "' lacks '" << (part) << "'"

ModelConfig LoadConfig(const std::string& name) {
  auto c = LoadHfConfig(std::string(ZT_SOURCE_DIR) + "/configs/" + name);
  ZT_CHECK(c.ok()) << c.status().ToString();
  return *c;
}

// Parameters of a model with deterministic values, in host memory.
struct HostParams {
  std::vector<ParamSpec> specs;
  std::vector<Bytes> storage;
  std::vector<TensorToWrite> tensors;
};

HostParams MakeParams(const ModelConfig& c, DType dt, uint64_t seed = 1) {
  HostParams h;
  auto specs = ModelParamSpecs(c, dt);
  ZT_CHECK(specs.ok()) << specs.status().ToString();
  h.specs = *specs;
  h.storage.reserve(h.specs.size());
  for (const auto& s : h.specs) {
    h.storage.emplace_back(static_cast<size_t>(s.shape.numel()) * DTypeSize(dt));
    Tensor t(h.storage.back().data(), dt, s.shape);
    InitParam(s.name, t, {.std = 0.5, .n_layer = 2, .seed = seed});
    if (s.name.find("bias") != std::string::npos || s.name.find("norm") != std::string::npos ||
        s.name.find("ln_") != std::string::npos) {
      InitParam("values." + std::to_string(h.tensors.size()), t, {.std = 0.5, .seed = seed});  // not all 0 / 1
    }
    h.tensors.push_back({s.name, t});
  }
  return h;
}

// Loads into a name -> bytes map.
StatusOr<LoadResult> LoadInto(const std::string& path, const std::vector<ParamSpec>& specs,
                              std::map<std::string, Bytes>* out, int* calls = nullptr) {
  return LoadWeights(path, specs, [&](const std::string& name, const Tensor& t) -> Status {
    if (calls) ++*calls;
    const auto* p = static_cast<const uint8_t*>(t.data);
    (*out)[name] = Bytes(p, p + t.nbytes());
    return OkStatus();
  });
}

class WeightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "zt_weights_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

void ExpectSameBytes(const HostParams& h, const std::map<std::string, Bytes>& loaded) {
  ASSERT_EQ(loaded.size(), h.specs.size());
  for (size_t i = 0; i < h.specs.size(); ++i) {
    auto it = loaded.find(h.specs[i].name);
    ASSERT_NE(it, loaded.end()) << h.specs[i].name;
    EXPECT_TRUE(it->second == h.storage[i]) << h.specs[i].name;
  }
}

TEST_F(WeightsTest, RoundTripEveryFamilyAndDType) {
  ModelConfig tied = LoadConfig("tiny-llama.json");
  tied.llama.tie_word_embeddings = true;
  for (const ModelConfig& c : {LoadConfig("tiny-gpt2.json"), LoadConfig("tiny-llama.json"), tied}) {
    for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
      SCOPED_TRACE(std::string(ModelFamilyName(c.family)) + " " + DTypeName(dt));
      HostParams h = MakeParams(c, dt);
      std::string out = Path(std::string("export_") + DTypeName(dt));
      auto files = ExportWeights(out, c, h.tensors);
      ASSERT_TRUE(files.ok()) << files.status().ToString();
      EXPECT_EQ(*files, (std::vector<std::string>{out + "/model.safetensors", out + "/config.json"}));
      std::map<std::string, Bytes> loaded;
      auto r = LoadInto(out, h.specs, &loaded);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_TRUE(r->warnings.empty()) << r->warnings.front();
      ExpectSameBytes(h, loaded);
      auto back = LoadHfConfig(out);
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      EXPECT_EQ(TiedEmbeddings(*back), TiedEmbeddings(c));
      auto specs_back = ModelParamSpecs(*back, dt);
      ASSERT_TRUE(specs_back.ok());
      EXPECT_EQ(specs_back->size(), h.specs.size());
    }
  }
}

// Bits of f32 values and their correct bf16 / f16 roundings (nearest, ties to even), by hand.
struct RoundCase {
  uint32_t f32;
  uint16_t bf16;
  uint16_t f16;
};
const RoundCase kRoundCases[] = {
    {0x3F800000, 0x3F80, 0x3C00},  // 1
    {0x3F808000, 0x3F80, 0x3C04},  // 1 + 2^-8: bf16 tie -> even (down)
    {0x3F818000, 0x3F82, 0x3C0C},  // 1 + 3 * 2^-8: bf16 tie -> even (up)
    {0x3F808001, 0x3F81, 0x3C04},  // just above the bf16 tie
    {0x3F801000, 0x3F80, 0x3C00},  // 1 + 2^-11: f16 tie -> even (down)
    {0x3F803000, 0x3F80, 0x3C02},  // 1 + 3 * 2^-11: f16 tie -> even (up)
    {0xBF818000, 0xBF82, 0xBC0C},  // negative ties round the same way
    {0x80000000, 0x8000, 0x8000},  // -0
    {0x7F800000, 0x7F80, 0x7C00},  // inf
    {0x7F7FFFFF, 0x7F80, 0x7C00},  // max float: bf16 rounds up to inf, f16 overflows
    {0x477FEF00, 0x4780, 0x7BFF},  // 65519: f16 max 65504
    {0x477FF000, 0x4780, 0x7C00},  // 65520: f16 tie between 65504 and 2^16 -> inf
    {0x33800000, 0x3380, 0x0001},  // 2^-24: smallest f16 subnormal
    {0x33000000, 0x3300, 0x0000},  // 2^-25: f16 tie between 0 and 2^-24 -> 0
    {0x33C00000, 0x33C0, 0x0002},  // 1.5 * 2^-24: f16 tie -> 2 * 2^-24
    {0x33400000, 0x3340, 0x0001},  // 0.75 * 2^-24: above the tie -> 2^-24
    {0x00008000, 0x0000, 0x0000},  // f32 subnormal, bf16 tie -> 0
    {0x00018000, 0x0002, 0x0000},  // bf16 tie -> even (up)
};

TEST_F(WeightsTest, F32FileRoundsToNearestEvenIntoHalfParams) {
  std::vector<uint32_t> bits;
  for (const auto& c : kRoundCases) bits.push_back(c.f32);
  const int64_t n = static_cast<int64_t>(bits.size());
  ASSERT_TRUE(WriteSafetensors(Path("x.safetensors"), {{"x", Tensor(bits.data(), DType::kF32, Shape{n})}}).ok());
  for (DType dt : {DType::kBF16, DType::kF16}) {
    std::map<std::string, Bytes> loaded;
    auto r = LoadInto(Path("x.safetensors"), {{"x", dt, Shape{n}}}, &loaded);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    std::vector<uint16_t> got(static_cast<size_t>(n));
    std::memcpy(got.data(), loaded["x"].data(), got.size() * 2);
    for (size_t i = 0; i < got.size(); ++i) {
      uint16_t want = dt == DType::kBF16 ? kRoundCases[i].bf16 : kRoundCases[i].f16;
      EXPECT_EQ(got[i], want) << DTypeName(dt) << " of f32 0x" << std::hex << kRoundCases[i].f32;
    }
  }
}

int RunPython(const std::string& args) {
  std::string cmd = std::string(ZT_PYTHON) + " " + ZT_SOURCE_DIR + "/tests/models/" + args;
  int rc = std::system(cmd.c_str());
  if (rc != 0) ADD_FAILURE() << "python failed (" << cmd << ", status " << rc << "); needs python3-torch";
  return rc;
}

TEST_F(WeightsTest, ConvertsLikeTorch) {
  const std::string prefix = Path("halves");
  ASSERT_EQ(RunPython("weights_check.py write-halves --seed 3 --out " + prefix), 0);
  auto open = [&](const std::string& kind) {
    auto f = SafetensorsFile::Open(prefix + "." + kind + ".safetensors");
    ZT_CHECK(f.ok()) << f.status().ToString();
    return std::move(*f);
  };
  auto f32 = open("f32"), bf16 = open("bf16"), f16 = open("f16"), f16w = open("f16w");
  const Shape shape = f32->Find("x")->shape;
  const size_t n = static_cast<size_t>(shape.numel());
  auto load = [&](const std::string& kind, DType dt) {
    std::map<std::string, Bytes> out;
    auto r = LoadInto(prefix + "." + kind + ".safetensors", {{"x", dt, shape}}, &out);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return out["x"];
  };
  auto raw = [](const SafetensorsFile& f) {
    Tensor t = f.View(*f.Find("x"));
    const auto* p = static_cast<const uint8_t*>(t.data);
    return Bytes(p, p + t.nbytes());
  };
  EXPECT_TRUE(load("f32", DType::kBF16) == raw(*bf16)) << "f32 -> bf16 differs from torch";
  EXPECT_TRUE(load("f32", DType::kF16) == raw(*f16)) << "f32 -> f16 differs from torch";
  EXPECT_TRUE(load("f16", DType::kF32) == raw(*f16w)) << "f16 -> f32 differs from torch";
  EXPECT_TRUE(load("bf16", DType::kBF16) == raw(*bf16));
  // bf16 -> f32 widens exactly: the bits move up by 16.
  Bytes wide = load("bf16", DType::kF32), narrow = raw(*bf16);
  ASSERT_EQ(wide.size(), 2 * narrow.size());
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    uint32_t w;
    std::memcpy(&h, narrow.data() + 2 * i, 2);
    std::memcpy(&w, wide.data() + 4 * i, 4);
    ASSERT_EQ(w, static_cast<uint32_t>(h) << 16) << i;
  }
}

std::vector<std::string> ShardFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (n.rfind("model-", 0) == 0) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(WeightsTest, ShardedRoundTrip) {
  ModelConfig c = LoadConfig("tiny-llama.json");
  HostParams h = MakeParams(c, DType::kF32);
  const uint64_t max_shard = 40000;  // the largest tensors (embed, lm_head: 16 KiB... 32 KiB) fit
  auto files = ExportWeights(dir_, c, h.tensors, max_shard);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  std::vector<std::string> shards = ShardFiles(dir_);
  ASSERT_GT(shards.size(), 2u);
  EXPECT_FALSE(fs::exists(Path("model.safetensors")));
  uint64_t total = 0;
  for (const auto& t : h.tensors) total += t.tensor.nbytes();
  std::ifstream in(Path("model.safetensors.index.json"));
  auto index = nlohmann::json::parse(in);
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
  EXPECT_EQ(index["weight_map"].size(), h.tensors.size());
  for (size_t i = 0; i < shards.size(); ++i) {
    char want[64];
    std::snprintf(want, sizeof(want), "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    EXPECT_EQ(shards[i], want);
    auto f = SafetensorsFile::Open(Path(shards[i]));
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    uint64_t bytes = 0;
    for (const auto& e : (*f)->entries()) {
      bytes += e.nbytes;
      EXPECT_EQ(index["weight_map"][e.name], shards[i]);
    }
    EXPECT_TRUE(bytes <= max_shard || (*f)->entries().size() == 1) << shards[i] << " holds " << bytes;
    EXPECT_EQ((*f)->metadata().at("format"), "pt");
  }
  for (const std::string& path : {dir_, Path("model.safetensors.index.json")}) {
    std::map<std::string, Bytes> loaded;
    auto r = LoadInto(path, h.specs, &loaded);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->warnings.empty()) << r->warnings.front();
    EXPECT_EQ(r->files.size(), shards.size());
    ExpectSameBytes(h, loaded);
  }
}

TEST_F(WeightsTest, ReExportLeavesNoStaleFiles) {
  ModelConfig c = LoadConfig("tiny-gpt2.json");
  HostParams a = MakeParams(c, DType::kF32, 1), b = MakeParams(c, DType::kF32, 2), d = MakeParams(c, DType::kF32, 3);
  ASSERT_TRUE(ExportWeights(dir_, c, a.tensors, 20000).ok());
  size_t many = ShardFiles(dir_).size();
  ASSERT_GT(many, 3u);
  ASSERT_TRUE(ExportWeights(dir_, c, b.tensors).ok());  // single file now
  EXPECT_TRUE(ShardFiles(dir_).empty());
  EXPECT_FALSE(fs::exists(Path("model.safetensors.index.json")));
  std::map<std::string, Bytes> loaded;
  ASSERT_TRUE(LoadInto(dir_, b.specs, &loaded).ok());
  ExpectSameBytes(b, loaded);
  ASSERT_TRUE(ExportWeights(dir_, c, d.tensors, 60000).ok());  // fewer shards than the first time
  EXPECT_FALSE(fs::exists(Path("model.safetensors")));
  size_t fewer = ShardFiles(dir_).size();
  EXPECT_GT(fewer, 1u);
  EXPECT_LT(fewer, many);
  loaded.clear();
  ASSERT_TRUE(LoadInto(dir_, d.specs, &loaded).ok());
  ExpectSameBytes(d, loaded);
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().extension() == ".tmp", false) << e.path();
}

TEST_F(WeightsTest, FailedExportLeavesNothingThatLooksComplete) {
  ModelConfig c = LoadConfig("tiny-gpt2.json");
  HostParams h = MakeParams(c, DType::kF32);
  ASSERT_TRUE(ExportWeights(Path("dry_run"), c, h.tensors, 40000).ok());
  const size_t n = ShardFiles(Path("dry_run")).size();
  ASSERT_GT(n, 2u);
  ASSERT_TRUE(ExportWeights(dir_, c, h.tensors).ok());
  ASSERT_TRUE(fs::exists(Path("config.json")));
  // A directory where the second shard must go makes its rename fail midway.
  char blocked[64];
  std::snprintf(blocked, sizeof(blocked), "model-00002-of-%05zu.safetensors", n);
  fs::create_directories(Path(blocked));
  auto r = ExportWeights(dir_, c, h.tensors, 40000);
  ASSERT_FALSE(r.ok());
  EXPECT_HAS(r.status().message(), blocked);
  EXPECT_FALSE(fs::exists(Path("config.json")));
  EXPECT_FALSE(fs::exists(Path("model.safetensors")));
  EXPECT_FALSE(fs::exists(Path("model.safetensors.index.json")));
  std::map<std::string, Bytes> loaded;
  auto load = LoadInto(dir_, h.specs, &loaded);
  ASSERT_FALSE(load.ok());
  EXPECT_EQ(load.status().code(), StatusCode::kNotFound);
}

TEST_F(WeightsTest, ExportRejectsTensorsThatDoNotMatchTheConfig) {
  ModelConfig c = LoadConfig("tiny-gpt2.json");
  HostParams h = MakeParams(c, DType::kF32);
  auto missing = h.tensors;
  missing.pop_back();
  EXPECT_HAS(ExportWeights(dir_, c, missing).status().message(), "transformer.ln_f.bias");
  auto extra = h.tensors;
  extra.push_back({"lm_head.weight", h.tensors[0].tensor});
  EXPECT_HAS(ExportWeights(dir_, c, extra).status().message(), "'lm_head.weight' is not a parameter");
  auto reshaped = h.tensors;
  reshaped[0].tensor = reshaped[0].tensor.Reshaped(Shape{32, 128});
  EXPECT_HAS(ExportWeights(dir_, c, reshaped).status().message(), "[32,128]");
  EXPECT_FALSE(fs::exists(Path("config.json")));
}

// Writes `tensors` (name -> f32 values / shape) as one safetensors file.
void WriteF32(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors) {
  std::vector<TensorToWrite> w;
  for (const auto& [n, t] : tensors) w.push_back({n, t});
  ZT_CHECK_OK(WriteSafetensors(path, w));
}

TEST_F(WeightsTest, MissingParametersAreNamedWithSimilarNames) {
  ModelConfig c = LoadConfig("tiny-gpt2.json");
  HostParams h = MakeParams(c, DType::kF32);
  std::vector<std::pair<std::string, Tensor>> renamed;
  for (const auto& t : h.tensors)
    renamed.push_back({t.name == "transformer.h.0.ln_1.weight" ? "transformer.h.0.ln1.weight" : t.name, t.tensor});
  WriteF32(Path("renamed.safetensors"), renamed);
  int calls = 0;
  std::map<std::string, Bytes> loaded;
  auto r = LoadInto(Path("renamed.safetensors"), h.specs, &loaded, &calls);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_HAS(r.status().message(), "1 of the model's 28 parameters are missing");
  EXPECT_HAS(r.status().message(), "'transformer.h.0.ln_1.weight'");
  EXPECT_HAS(r.status().message(), "similarly named tensor 'transformer.h.0.ln1.weight' exists");
  EXPECT_EQ(calls, 0);  // nothing is loaded from a checkpoint that does not fit
  // A Llama loaded from a GPT-2 file: nothing similar.
  ModelConfig l = LoadConfig("tiny-llama.json");
  auto specs = ModelParamSpecs(l);
  ASSERT_TRUE(specs.ok());
  r = LoadInto(Path("renamed.safetensors"), *specs, &loaded, &calls);
  ASSERT_FALSE(r.ok());
  EXPECT_HAS(r.status().message(), "'model.embed_tokens.weight'; no similarly named tensor exists");
  EXPECT_HAS(r.status().message(), "more");
  EXPECT_EQ(calls, 0);
}

TEST_F(WeightsTest, ShapeAndDTypeMismatchesShowBoth) {
  ModelConfig c = LoadConfig("tiny-gpt2.json");
  HostParams h = MakeParams(c, DType::kF32);
  ASSERT_TRUE(ExportWeights(dir_, c, h.tensors).ok());
  ModelConfig bigger = c;
  bigger.gpt2.vocab_size = 65;
  auto specs = ModelParamSpecs(bigger);
  ASSERT_TRUE(specs.ok());
  int calls = 0;
  std::map<std::string, Bytes> loaded;
  auto r = LoadInto(dir_, *specs, &loaded, &calls);
  ASSERT_FALSE(r.ok());
  EXPECT_HAS(r.status().message(), "'transformer.wte.weight' has shape [65,64] in the model but [64,64]");
  EXPECT_EQ(calls, 0);
  // An integer tensor where a float parameter is expected.
  std::vector<int32_t> ints(64 * 64, 1);
  WriteF32(Path("ints.safetensors"), {{"w", Tensor(ints.data(), DType::kI32, Shape{64, 64})}});
  r = LoadInto(Path("ints.safetensors"), {{"w", DType::kF32, Shape{64, 64}}}, &loaded, &calls);
  ASSERT_FALSE(r.ok());
  EXPECT_HAS(r.status().message(), "'w' is f32 but");
  EXPECT_HAS(r.status().message(), "as I32");
  // The transposed layout gets a hint.
  r = LoadInto(Path("ints.safetensors"), {{"w", DType::kI32, Shape{32, 128}}}, &loaded, &calls);
  ASSERT_FALSE(r.ok());
  EXPECT_HAS(r.status().message(), "[32,128] in the model but [64,64]");
  std::vector<float> rect(2 * 3);
  WriteF32(Path("rect.safetensors"), {{"w", Tensor(rect.data(), DType::kF32, Shape{2, 3})}});
  r = LoadInto(Path("rect.safetensors"), {{"w", DType::kF32, Shape{3, 2}}}, &loaded, &calls);
  ASSERT_FALSE(r.ok());
  EXPECT_HAS(r.status().message(), "transposed");
  EXPECT_EQ(calls, 0);
}

TEST_F(WeightsTest, BadShardIndexesAreErrors) {
  ModelConfig c = LoadConfig("tiny-gpt2.json");
  HostParams h = MakeParams(c, DType::kF32);
  ASSERT_TRUE(ExportWeights(dir_, c, h.tensors, 40000).ok());
  const std::string index = Path("model.safetensors.index.json");
  std::ifstream in(index);
  const nlohmann::json good = nlohmann::json::parse(in);
  std::map<std::string, Bytes> loaded;
  auto expect_error = [&](const std::string& text, const std::string& part) {
    std::ofstream(index, std::ios::trunc) << text;
    auto r = LoadInto(dir_, h.specs, &loaded);
    ASSERT_FALSE(r.ok()) << text.substr(0, 80);
    EXPECT_HAS(r.status().message(), part);
    EXPECT_HAS(r.status().message(), index);
  };
  expect_error("{\"weight_map\": {", "not valid JSON");
  expect_error("[]", "not a JSON object");
  expect_error("{\"metadata\": {}}", "no \"weight_map\" object");
  nlohmann::json j = good;
  j["weight_map"]["transformer.wte.weight"] = 3;
  expect_error(j.dump(), "'transformer.wte.weight' is not a file name string");
  j = good;
  j["weight_map"]["transformer.wte.weight"] = "../" + good["weight_map"]["transformer.wte.weight"].get<std::string>();
  expect_error(j.dump(), "not a file in the index's directory");
  j = good;
  j["metadata"]["total_size"] = -5;
  expect_error(j.dump(), "total_size is not a non-negative integer");
  j = good;
  j["weight_map"]["transformer.wte.weight"] = "model-99999-of-99999.safetensors";
  expect_error(j.dump(), "names shard model-99999-of-99999.safetensors");
  j = good;
  const std::string wte_shard = good["weight_map"]["transformer.wte.weight"];
  std::string other;
  for (const auto& shard : good["weight_map"])
    if (shard != wte_shard) other = shard;
  j["weight_map"]["transformer.wte.weight"] = other;
  expect_error(j.dump(), "puts tensor 'transformer.wte.weight' in " + other + ", which does not contain it");
  // A wrong total_size is only a warning; a deleted shard is an error naming it.
  j = good;
  j["metadata"]["total_size"] = 12;
  std::ofstream(index, std::ios::trunc) << j.dump();
  auto r = LoadInto(dir_, h.specs, &loaded);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_HAS(r->warnings[0], "total_size 12");
  std::ofstream(index, std::ios::trunc) << good.dump();
  const std::string last = good["weight_map"]["transformer.ln_f.bias"];
  fs::remove(Path(last));
  r = LoadInto(dir_, h.specs, &loaded);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_HAS(r.status().message(), "names shard " + last);
  // No weights at all.
  fs::remove(index);
  r = LoadInto(dir_, h.specs, &loaded);
  ASSERT_FALSE(r.ok());
  EXPECT_HAS(r.status().message(), "neither model.safetensors nor model.safetensors.index.json");
  EXPECT_FALSE(LoadInto(Path("nope.safetensors"), h.specs, &loaded).ok());
}

TEST_F(WeightsTest, ExtraTensorsAndTiedHeads) {
  ModelConfig c = LoadConfig("tiny-gpt2.json");
  HostParams h = MakeParams(c, DType::kF32);
  std::vector<float> mask(64 * 64, 1.0f), other(64 * 64, 0.25f), one(1, -1e4f);
  std::vector<std::pair<std::string, Tensor>> files;
  for (const auto& t : h.tensors) files.push_back({t.name, t.tensor});
  files.push_back({"transformer.h.0.attn.bias", Tensor(mask.data(), DType::kF32, Shape{1, 1, 64, 64})});
  files.push_back({"transformer.h.1.attn.masked_bias", Tensor(one.data(), DType::kF32, Shape{})});
  files.push_back({"lm_head.weight", h.tensors[0].tensor});  // equals transformer.wte.weight
  WriteF32(Path("buffers.safetensors"), files);
  std::map<std::string, Bytes> loaded;
  auto r = LoadInto(Path("buffers.safetensors"), h.specs, &loaded);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->warnings.empty()) << r->warnings.front();
  ExpectSameBytes(h, loaded);
  files.back() = {"lm_head.weight", Tensor(other.data(), DType::kF32, Shape{64, 64})};
  files.push_back({"classifier.weight", Tensor(one.data(), DType::kF32, Shape{1})});
  WriteF32(Path("extra.safetensors"), files);
  r = LoadInto(Path("extra.safetensors"), h.specs, &loaded);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->warnings.size(), 2u);
  EXPECT_HAS(r->warnings[0], "'classifier.weight' (f32 [1])");
  EXPECT_HAS(r->warnings[1], "lm_head.weight");
  EXPECT_HAS(r->warnings[1], "differs from the embedding");
}

TEST_F(WeightsTest, CheckpointsOfTheBaseModelLoadWithoutPrefix) {
  // transformers' own gpt2 checkpoint names tensors "h.0.attn.c_attn.weight", "wte.weight", ...
  ModelConfig c = LoadConfig("tiny-gpt2.json");
  HostParams h = MakeParams(c, DType::kF32);
  std::vector<std::pair<std::string, Tensor>> files;
  for (const auto& t : h.tensors) files.push_back({t.name.substr(std::string("transformer.").size()), t.tensor});
  files.push_back({"h.0.attn.bias", h.tensors[2].tensor});
  WriteF32(Path("base.safetensors"), files);
  std::map<std::string, Bytes> loaded;
  auto r = LoadInto(Path("base.safetensors"), h.specs, &loaded);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->warnings.empty()) << r->warnings.front();
  ExpectSameBytes(h, loaded);
}

TEST_F(WeightsTest, SinkErrorsStopTheLoad) {
  ModelConfig c = LoadConfig("tiny-llama.json");
  HostParams h = MakeParams(c, DType::kBF16);
  ASSERT_TRUE(ExportWeights(dir_, c, h.tensors).ok());
  int calls = 0;
  auto r = LoadWeights(dir_, h.specs, [&](const std::string& name, const Tensor&) -> Status {
    if (++calls == 3) return Unavailable("device copy failed");
    return OkStatus();
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(calls, 3);
  EXPECT_HAS(r.status().message(), "loading parameter '" + h.specs[2].name + "': device copy failed");
}

// The reference's model sizes (tests/models/torch_reference.py defaults).
ModelConfig ReferenceConfig(ModelFamily f) {
  ModelConfig c;
  c.family = f;
  c.gpt2 = {.vocab_size = 67, .n_positions = 16, .n_embd = 32, .n_layer = 2, .n_head = 4};
  c.llama = {.vocab_size = 67, .hidden_size = 32, .intermediate_size = 40, .num_hidden_layers = 2,
             .num_attention_heads = 4, .num_key_value_heads = 2, .max_position_embeddings = 16};
  return c;
}

TEST_F(WeightsTest, FilesWrittenByPyTorchLoad) {
  for (ModelFamily f : {ModelFamily::kGpt2, ModelFamily::kLlama}) {
    std::string family = ModelFamilyName(f), file = Path(family + "_ref.safetensors");
    ASSERT_EQ(RunPython("torch_reference.py " + family + " --seed 5 --out " + file), 0);
    auto ref = SafetensorsFile::Open(file);
    ASSERT_TRUE(ref.ok()) << ref.status().ToString();
    auto specs = ModelParamSpecs(ReferenceConfig(f));
    ASSERT_TRUE(specs.ok());
    std::map<std::string, Bytes> loaded;
    auto r = LoadInto(file, *specs, &loaded);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(loaded.size(), specs->size());
    for (const auto& s : *specs) {
      Tensor t = (*ref)->View(*(*ref)->Find(s.name));
      ASSERT_EQ(loaded[s.name].size(), t.nbytes()) << s.name;
      EXPECT_EQ(std::memcmp(loaded[s.name].data(), t.data, t.nbytes()), 0) << s.name;
    }
    // The reference's inputs and expected results are not parameters: one warning each.
    std::string all;
    for (const auto& w : r->warnings) all += w + "\n";
    EXPECT_HAS(all, "'tokens'");
    EXPECT_HAS(all, "'ref.loss'");
    EXPECT_EQ(r->warnings.size(), (*ref)->entries().size() - specs->size());
  }
}

TEST_F(WeightsTest, PythonReadsExportsWithTorchRounding) {
  struct Case {
    ModelFamily family;
    DType dtype;
    uint64_t max_shard;
    int shards;
  };
  for (const Case& k : {Case{ModelFamily::kGpt2, DType::kBF16, 12000, 0}, Case{ModelFamily::kLlama, DType::kF16, kDefaultMaxShardBytes, 1},
                        Case{ModelFamily::kLlama, DType::kF32, 9000, 0}}) {
    std::string family = ModelFamilyName(k.family), ref = Path(family + "_ref.safetensors");
    SCOPED_TRACE(family + " " + DTypeName(k.dtype));
    if (!fs::exists(ref)) {
      ASSERT_EQ(RunPython("torch_reference.py " + family + " --seed 9 --out " + ref), 0);
    }
    ModelConfig c = ReferenceConfig(k.family);
    auto specs = ModelParamSpecs(c, k.dtype);
    ASSERT_TRUE(specs.ok());
    // Load the f32 reference into k.dtype parameters, then export them.
    std::map<std::string, Bytes> loaded;
    ASSERT_TRUE(LoadInto(ref, *specs, &loaded).ok());
    std::vector<TensorToWrite> tensors;
    for (const auto& s : *specs) tensors.push_back({s.name, Tensor(loaded[s.name].data(), k.dtype, s.shape)});
    std::string out = Path(family + "_" + DTypeName(k.dtype));
    ASSERT_TRUE(ExportWeights(out, c, tensors, k.max_shard).ok());
    int shards = k.shards ? k.shards : static_cast<int>(ShardFiles(out).size());
    if (!k.shards) {
      EXPECT_GT(shards, 1);
    }
    EXPECT_EQ(RunPython("weights_check.py check " + out + " --reference " + ref + " --dtype " +
                        DTypeName(k.dtype) + " --shards " + std::to_string(shards)),
              0);
  }
}

}  // namespace
}  // namespace zt::models
