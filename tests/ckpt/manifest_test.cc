// Manifest JSON: the round trip, and every way a manifest can be malformed (each key missing,
// each value of the wrong type, inconsistent numbers, broken JSON) -> DataLoss naming the key.
#include <gtest/gtest.h>

#include <functional>

#include "ckpt/checksum.h"
#include "ckpt/format.h"
#include "ckpt/manifest.h"
#include "ckpt_test_util.h"

namespace zt::ckpt {
namespace {

using nlohmann::json;
using testing::TestFields;

Manifest FullManifest(int world) {
  Manifest m = TestFields(world, 42);
  m.applied_updates = 40;
  m.scaler = {1024.5, 42, 17, 2};
  m.sampler_epoch = 3;
  m.sampler_position = 99;
  m.seed = 0xfedcba9876543210ull;  // above 2^63: must survive as an unsigned integer
  m.created = "2025-01-02T03:04:05Z";
  for (int r = 0; r < world; ++r) {
    ShardInfo s;
    s.rank = r;
    s.file = ShardFileName(r);
    s.sections = {{"master/h.0", DType::kF32, 500, 4096}, {"exp_avg/h.0", DType::kBF16, 500, 8192}};
    s.bytes = 12288;
    s.checksum = FormatChecksum(0x0123456789abcdefull + r);
    m.shards.push_back(s);
  }
  return m;
}

void ExpectSame(const Manifest& a, const Manifest& b) {
  EXPECT_EQ(ToJson(a), ToJson(b));
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.layout.units.size(), b.layout.units.size());
  for (size_t i = 0; i < a.layout.units.size(); ++i) {
    EXPECT_EQ(a.layout.units[i].name, b.layout.units[i].name);
    EXPECT_EQ(a.layout.units[i].shard, b.layout.units[i].shard);
    ASSERT_EQ(a.layout.units[i].params.size(), b.layout.units[i].params.size());
    for (size_t p = 0; p < a.layout.units[i].params.size(); ++p)
      EXPECT_EQ(a.layout.units[i].params[p].shape, b.layout.units[i].params[p].shape);
  }
  ASSERT_EQ(a.shards.size(), b.shards.size());
  for (size_t i = 0; i < a.shards.size(); ++i) {
    EXPECT_EQ(a.shards[i].checksum, b.shards[i].checksum);
    ASSERT_EQ(a.shards[i].sections.size(), b.shards[i].sections.size());
    EXPECT_EQ(a.shards[i].sections[1].dtype, b.shards[i].sections[1].dtype);
    EXPECT_EQ(a.shards[i].sections[1].offset, b.shards[i].sections[1].offset);
  }
  EXPECT_EQ(a.config, b.config);
  EXPECT_EQ(a.scaler.scale, b.scaler.scale);
  EXPECT_EQ(a.scaler.last_overflow_iter, b.scaler.last_overflow_iter);
}

TEST(Manifest, RoundTripsThroughJsonAndText) {
  for (int world : {1, 2, 3}) {
    Manifest m = FullManifest(world);
    auto back = ParseManifest(ToJson(m), "m.json");
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ExpectSame(m, *back);
    auto text_back = ParseManifestText(ManifestText(m), "m.json");
    ASSERT_TRUE(text_back.ok()) << text_back.status().ToString();
    ExpectSame(m, *text_back);
    EXPECT_EQ(text_back->seed, 0xfedcba9876543210ull);
  }
}

// Calls fn(node, path) for every object key under j (not below "config", which is free-form).
void ForEachKey(json& j, const std::string& path, const std::function<void(json&, const std::string&)>& fn) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      std::string p = path.empty() ? it.key() : path + "." + it.key();
      fn(j, p);
      if (it.key() != "config") ForEachKey(it.value(), p, fn);
    }
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) ForEachKey(j[i], path + "[" + std::to_string(i) + "]", fn);
  }
}

json* At(json& root, const std::string& path) {
  // path like "layout.units[0].params[1].offset"
  json* cur = &root;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '.') ++i;
    if (path[i] == '[') {
      size_t close = path.find(']', i);
      cur = &(*cur)[std::stoul(path.substr(i + 1, close - i - 1))];
      i = close + 1;
      continue;
    }
    size_t end = path.find_first_of(".[", i);
    if (end == std::string::npos) end = path.size();
    cur = &(*cur)[path.substr(i, end - i)];
    i = end;
  }
  return cur;
}

std::string Leaf(const std::string& path) {
  size_t dot = path.find_last_of('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

TEST(Manifest, EveryMissingKeyIsDataLossNamingTheKey) {
  json good = ToJson(FullManifest(2));
  std::vector<std::string> paths;
  ForEachKey(good, "", [&](json&, const std::string& p) { paths.push_back(p); });
  ASSERT_GT(paths.size(), 60u);
  for (const std::string& p : paths) {
    json bad = good;
    size_t dot = p.find_last_of('.');
    json* parent = dot == std::string::npos ? &bad : At(bad, p.substr(0, dot));
    parent->erase(Leaf(p));
    auto r = ParseManifest(bad, "ckpt/step-x/manifest.json");
    ASSERT_FALSE(r.ok()) << "accepted a manifest without " << p;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << p;
    EXPECT_NE(r.status().message().find("'" + p + "' is missing"), std::string::npos)
        << p << ": " << r.status().message();
    EXPECT_NE(r.status().message().find("ckpt/step-x/manifest.json"), std::string::npos) << r.status().message();
  }
}

TEST(Manifest, EveryValueOfTheWrongTypeIsDataLoss) {
  json good = ToJson(FullManifest(2));
  std::vector<std::string> paths;
  ForEachKey(good, "", [&](json&, const std::string& p) { paths.push_back(p); });
  int checked = 0;
  for (const std::string& p : paths) {
    if (p == "config") continue;  // any object (or null) is accepted
    json bad = good;
    json* v = At(bad, p);
    if (v->is_string()) *v = 7;
    else if (v->is_number()) *v = "7";
    else if (v->is_array()) *v = json::object();
    else if (v->is_object()) *v = json::array();
    else continue;
    auto r = ParseManifest(bad, "m.json");
    ASSERT_FALSE(r.ok()) << "accepted a wrong type at " << p;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << p;
    EXPECT_NE(r.status().message().find("'" + p + "'"), std::string::npos) << p << ": " << r.status().message();
    ++checked;
  }
  EXPECT_GT(checked, 60);
}

struct BadCase {
  const char* what;
  std::function<void(json&)> mutate;
  const char* expect;  // a substring of the message
};

TEST(Manifest, InconsistentValuesAreDataLoss) {
  std::vector<BadCase> cases = {
      {"not an object", [](json& j) { j = json::array(); }, "not a JSON object"},
      {"another format", [](json& j) { j["format"] = "pytorch"; }, "'format'"},
      {"future version", [](json& j) { j["format_version"] = 2; }, "format_version 2"},
      {"negative step", [](json& j) { j["step"] = -1; }, "'step'"},
      {"updates > steps", [](json& j) { j["applied_updates"] = 43; }, "'applied_updates'"},
      {"world 0", [](json& j) { j["world_size"] = 0; }, "'world_size'"},
      {"stage 4", [](json& j) { j["zero_stage"] = 4; }, "'zero_stage'"},
      {"precision", [](json& j) { j["precision"] = "fp8"; }, "'precision'"},
      {"layout stage", [](json& j) { j["layout"]["stage"] = 2; }, "'layout.stage'"},
      {"layout world", [](json& j) { j["layout"]["world_size"] = 4; }, "'layout.world_size'"},
      {"unit numel", [](json& j) { j["layout"]["units"][0]["numel"] = 999; }, "'layout.units[0].numel'"},
      {"unit shard", [](json& j) { j["layout"]["units"][1]["shard"] = 18; }, "unit 'h.1'"},
      {"unit padded", [](json& j) { j["layout"]["units"][1]["padded"] = 37; }, "unit 'h.1'"},
      {"unit dtype", [](json& j) { j["layout"]["units"][0]["dtype"] = "f64"; }, "not a dtype"},
      {"duplicate unit", [](json& j) { j["layout"]["units"][1]["name"] = "h.0"; }, "appears twice"},
      {"param offset", [](json& j) { j["layout"]["units"][0]["params"][1]["offset"] = 499; },
       "'layout.units[0].params[1].offset'"},
      {"param dtype", [](json& j) { j["layout"]["units"][0]["params"][1]["dtype"] = "bf16"; }, "its unit is f32"},
      {"negative dim", [](json& j) { j["layout"]["units"][0]["params"][0]["shape"] = {-1}; }, "'layout.units[0].params[0].shape'"},
      {"too few shards", [](json& j) { j["shards"].erase(1); }, "lists 1 shards for world_size 2"},
      {"shard order", [](json& j) { std::swap(j["shards"][0], j["shards"][1]); }, "'shards[0].rank'"},
      {"path in file", [](json& j) { j["shards"][0]["file"] = "../x.shard"; }, "plain file name"},
      {"same file twice", [](json& j) { j["shards"][1]["file"] = j["shards"][0]["file"]; }, "twice"},
      {"checksum", [](json& j) { j["shards"][0]["checksum"] = "crc32:1234"; }, "'shards[0].checksum'"},
      {"checksum case", [](json& j) { j["shards"][0]["checksum"] = "xxh64:0123456789ABCDEF"; }, "'shards[0].checksum'"},
      {"tiny shard", [](json& j) { j["shards"][0]["bytes"] = 100; }, "'shards[0].bytes'"},
      {"section past end", [](json& j) { j["shards"][1]["sections"][1]["offset"] = 12000; }, "outside the shard"},
      {"section in header", [](json& j) { j["shards"][1]["sections"][0]["offset"] = 0; }, "outside the shard"},
      {"sections overlap", [](json& j) { j["shards"][0]["sections"][1]["offset"] = 5000; }, "overlap"},
      {"section twice", [](json& j) { j["shards"][0]["sections"][1]["name"] = "master/h.0"; }, "appears twice"},
      {"section dtype", [](json& j) { j["shards"][0]["sections"][0]["dtype"] = "q4"; }, "not a dtype"},
      {"scale 0", [](json& j) { j["scaler"]["scale"] = 0; }, "'scaler.scale'"},
      {"overflow iter", [](json& j) { j["scaler"]["last_overflow_iter"] = -2; }, "'scaler.last_overflow_iter'"},
      {"negative seed", [](json& j) { j["seed"] = -5; }, "'seed'"},
      {"config string", [](json& j) { j["config"] = "run.json"; }, "'config'"},
  };
  json good = ToJson(FullManifest(2));
  ASSERT_TRUE(ParseManifest(good, "m.json").ok());
  for (const auto& c : cases) {
    json bad = good;
    c.mutate(bad);
    auto r = ParseManifest(bad, "m.json");
    ASSERT_FALSE(r.ok()) << "accepted: " << c.what;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << c.what;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << c.what << ": " << r.status().message();
  }
}

TEST(Manifest, BrokenJsonTextIsDataLoss) {
  std::string text = ManifestText(FullManifest(1));
  for (std::string bad : {std::string(), text.substr(0, text.size() / 2), std::string("{\"format\": "),
                          std::string("\xff\xfe garbage")}) {
    auto r = ParseManifestText(bad, "d/manifest.json");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(r.status().message().find("d/manifest.json"), std::string::npos) << r.status().message();
  }
  // Valid JSON, wrong shape.
  auto r = ParseManifestText("[1,2,3]", "d/manifest.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
}

TEST(Manifest, NullConfigIsAccepted) {
  json j = ToJson(FullManifest(1));
  j["config"] = nullptr;
  EXPECT_TRUE(ParseManifest(j, "m.json").ok());
}

}  // namespace
}  // namespace zt::ckpt
