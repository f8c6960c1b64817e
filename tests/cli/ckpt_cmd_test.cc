// `ztrain ckpt ls|verify|inspect|export` end to end: runs the built binary (ZT_BINARY_DIR/ztrain)
// on checkpoints written in-process by 2 ranks (threads + MemoryStore + CheckpointWriter) over the
// real ZeRO unit layout of a tiny GPT-2, whose every master element is a known function of
// (step, unit, kind, index). Checks listing and inspection contents against the manifest, verify,
// the corruption cases (flipped byte, truncated shard, deleted manifest, garbled LATEST, missing
// shard, empty and missing directory: a clear error naming the file, exit code 1, never a crash,
// the directory untouched), and export (loaded back with models::LoadWeights), including a round
// trip through real engines (TakeSnapshot -> writer -> export == Engine::ReadParams).
#include <gtest/gtest.h>
#include <omp.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "backend/cpu/cpu_backend.h"
#include "ckpt/ckpt_test_util.h"
#include "ckpt/format.h"
#include "ckpt/reader.h"
#include "ckpt/writer.h"
#include "comm/memory_store.h"
#include "comm/thread_communicator.h"
#include "ir/autodiff.h"
#include "models/hf_config.h"
#include "models/init.h"
#include "models/model.h"
#include "models/safetensors.h"
#include "models/weights.h"
#include "runtime/engine.h"

namespace zt {
namespace {

namespace fs = std::filesystem;
using ckpt::testing::ReadBytes;
using ckpt::testing::TempDir;
using ckpt::testing::WriteBytes;

constexpr int kWorld = 2;
constexpr const char* kStep10 = "step-000000000010";
constexpr const char* kStep20 = "step-000000000020";

// ---- running the binary ----

struct CliRun {
  int exit_code = -1;  // -1: killed by a signal (a crash)
  std::string out, err;
};

// Runs `ztrain <args>` in `cwd`; stdout and stderr go to files in `scratch`.
CliRun Ztrain(const std::string& args, const std::string& scratch, const std::string& cwd = "") {
  const std::string bin = std::string(ZT_BINARY_DIR) + "/ztrain";
  EXPECT_TRUE(fs::exists(bin)) << bin << " is not built";
  const std::string out = scratch + "/stdout.txt", err = scratch + "/stderr.txt";
  std::string cmd = bin + " " + args + " >" + out + " 2>" + err;
  if (!cwd.empty()) cmd = "cd " + cwd + " && " + cmd;
  int rc = std::system(cmd.c_str());
  CliRun r;
  r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = ReadBytes(out);
  r.err = ReadBytes(err);
  return r;
}

bool Has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// The whitespace-separated words of the first line of `text` whose first word is `first`.
std::vector<std::string> Row(const std::string& text, const std::string& first) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream in(line);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    if (!words.empty() && words[0] == first) return words;
  }
  return {};
}

// Every file under dir with its bytes: to check that a command changed nothing.
std::map<std::string, std::string> Contents(const std::string& dir) {
  std::map<std::string, std::string> m;
  if (!fs::exists(dir)) return m;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    m[fs::relative(e.path(), dir).string()] = e.is_regular_file() ? ReadBytes(e.path().string()) : "<dir>";
  return m;
}

// ---- the tiny model and its checkpoint ----

// Odd sizes (37 x 15 embeddings, 15-element vectors), so that units do not divide evenly between
// 2 ranks and the last rank's slice ends in padding.
models::ModelConfig TinyConfig(int64_t n_embd = 15) {
  models::ModelConfig c;
  c.family = models::ModelFamily::kGpt2;
  c.gpt2.vocab_size = 37;
  c.gpt2.n_positions = 8;
  c.gpt2.n_embd = n_embd;
  c.gpt2.n_layer = 2;
  c.gpt2.n_head = 3;
  return c;
}

// The ZeRO layout the engine would use for the tiny model (stage 2, `world` ranks, small buckets
// so that blocks split into several units).
passes::ZeroLayout TinyLayout(int world) {
  ir::Graph g("gpt2");
  ir::Builder b(&g);
  auto m = models::BuildModel(b, TinyConfig(), {.batch = 1, .seq = 1, .dtype = DType::kF32});
  ZT_CHECK(m.ok()) << m.status().ToString();
  std::vector<passes::ParamForLayout> pls;
  for (ir::Value* p : ir::ParamsOf(g)) pls.push_back({p, p->shape.rank() < 2 ? 0.0 : 0.1});
  auto l = passes::PlanZeroLayout(pls, {2, world, passes::GatherUnit::kBlock, 300});
  ZT_CHECK(l.ok()) << l.status().ToString();
  return *l;
}

// The value of element i of (kind, unit u)'s flat buffer at `step`: exact in f32, different for
// every step, unit, kind and index, and not representable in bf16 (so rounding shows).
float Value(int64_t step, size_t unit, int kind, int64_t i) {
  return static_cast<float>((step * 7919 + static_cast<int64_t>(unit) * 1543 + kind * 389 + i) % 20011) / 1024.0f -
         9.7f;
}

std::unique_ptr<ckpt::RankSnapshot> LayoutSnapshot(const passes::ZeroLayout& l, int64_t step, int rank) {
  auto s = std::make_unique<ckpt::RankSnapshot>();
  s->step = step;
  s->rank = rank;
  s->world_size = static_cast<int>(l.world_size);
  for (size_t u = 0; u < l.units.size(); ++u) {
    const auto& unit = l.units[u];
    for (int k = 0; k < 3; ++k) {
      float* p = reinterpret_cast<float*>(
          s->AddSection(ckpt::SectionName(ckpt::kStateKinds[k], unit.name), DType::kF32, unit.shard));
      for (int64_t i = 0; i < unit.shard; ++i) {
        int64_t g = rank * unit.shard + i;
        p[i] = g < unit.numel ? Value(step, u, k, g) : 0.0f;  // padding is zeros, as the engine writes
      }
    }
  }
  return s;
}

ckpt::Manifest Fields(const passes::ZeroLayout& l, int64_t step, const nlohmann::json& config) {
  ckpt::Manifest m;
  m.step = step;
  m.applied_updates = step - 1;
  m.world_size = static_cast<int>(l.world_size);
  m.zero_stage = l.stage;
  m.precision = "fp32";
  m.layout = l;
  m.scaler.scale = 65536;
  m.scaler.iter = step;
  m.scaler.last_overflow_iter = 3;
  m.scaler.hysteresis_left = 2;
  m.sampler_epoch = 1;
  m.sampler_position = step * 8;
  m.seed = 1234;
  m.config = config;
  return m;
}

// Writes checkpoints of `steps` on kWorld rank threads; each rank submits make(step, rank).
void WriteCheckpoints(const std::string& dir, const std::vector<int64_t>& steps,
                      const std::function<std::unique_ptr<ckpt::RankSnapshot>(int64_t, int)>& make,
                      const std::function<ckpt::Manifest(int64_t)>& fields, int world = kWorld) {
  comm::MemoryStore store;
  store.set_timeout(std::chrono::seconds(30));
  ckpt::testing::RunRanks(world, [&](int rank) {
    ckpt::WriterOptions o;
    o.dir = dir;
    o.rank = rank;
    o.world_size = world;
    o.store = &store;
    o.keep_last = 0;
    o.chunk_bytes = 4096;
    auto w = ckpt::CheckpointWriter::Open(o);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (int64_t step : steps) ASSERT_TRUE((*w)->Submit(make(step, rank), fields(step)).ok());
    Status f = (*w)->Flush();
    ASSERT_TRUE(f.ok()) << f.ToString();
  });
}

// One pristine directory of checkpoints (steps 10 and 20) shared by the tests; each test that
// damages it works on a copy.
class CkptCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new TempDir();
    layout_ = new passes::ZeroLayout(TinyLayout(kWorld));
    const std::string cfg_dir = root_->File("model");
    fs::create_directories(cfg_dir);
    ZT_CHECK_OK(models::WriteHfConfig(TinyConfig(), cfg_dir + "/config.json"));
    // The run config names the model config relative to root_ (a run's working directory).
    nlohmann::json run = {{"train_batch_size", 8}, {"model", {{"config", "model/config.json"}}}};
    WriteCheckpoints(
        root_->File("ckpt"), {10, 20}, [](int64_t step, int rank) { return LayoutSnapshot(*layout_, step, rank); },
        [run](int64_t step) { return Fields(*layout_, step, run); });
  }
  static void TearDownTestSuite() {
    delete root_;
    delete layout_;
  }

  // A fresh copy of the pristine checkpoint directory, and scratch space beside it.
  std::string CopyOfCheckpoints() {
    const std::string dst = work_.File("ckpt");
    fs::copy(Pristine(), dst, fs::copy_options::recursive);
    return dst;
  }
  static std::string Pristine() { return root_->File("ckpt"); }
  static std::string Root() { return root_->path(); }
  static std::string ModelConfigPath() { return root_->File("model/config.json"); }
  // Runs in the scratch directory unless `cwd` is given.
  CliRun Run(const std::string& args, const std::string& cwd = "") {
    return Ztrain(args, work_.path(), cwd.empty() ? work_.path() : cwd);
  }

  // Runs args; expects exit code 1 (not a crash), the checkpoint dir unchanged, and every one of
  // `needles` in stderr.
  void ExpectFails(const std::string& args, const std::string& dir, const std::vector<std::string>& needles) {
    SCOPED_TRACE("ztrain " + args);
    auto before = Contents(dir);
    CliRun r = Run(args);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    for (const auto& n : needles) EXPECT_TRUE(Has(r.err, n)) << "stderr lacks '" << n << "':\n" << r.err;
    EXPECT_TRUE(Has(r.err, "ztrain: error: ")) << r.err;
    EXPECT_EQ(Contents(dir), before) << "the command changed " << dir;
  }

  static TempDir* root_;
  static passes::ZeroLayout* layout_;
  TempDir work_;
};
TempDir* CkptCli::root_ = nullptr;
passes::ZeroLayout* CkptCli::layout_ = nullptr;

// ---- ls ----

TEST_F(CkptCli, LsShowsEveryStateAndWhatLatestNames) {
  const std::string dir = CopyOfCheckpoints();
  // An uncommitted checkpoint (a valid manifest newer than LATEST: a crash before the commit), an
  // incomplete one (no manifest) and an invalid one (a manifest that does not parse).
  auto pristine = ckpt::CheckpointReader::Open(dir, 20);
  ASSERT_TRUE(pristine.ok()) << pristine.status().ToString();
  ckpt::Manifest newer = (*pristine)->manifest();
  newer.step = 40;
  fs::create_directories(dir + "/step-000000000040");
  WriteBytes(dir + "/step-000000000040/manifest.json", ckpt::ManifestText(newer));
  fs::create_directories(dir + "/step-000000000030");
  fs::create_directories(dir + "/step-000000000005");
  WriteBytes(dir + "/step-000000000005/manifest.json", "{\"format\": ");

  auto list = ckpt::ListCheckpoints(dir);
  ASSERT_TRUE(list.ok());
  auto before = Contents(dir);
  CliRun r = Run("ckpt ls " + dir);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(Contents(dir), before);
  // One line per step directory, oldest first, with the manifest's facts.
  std::vector<std::string> order = {"step-000000000005", kStep10, kStep20, "step-000000000030", "step-000000000040"};
  size_t at = 0;
  for (const auto& name : order) {
    size_t p = r.out.find(name + "  ", at);
    ASSERT_NE(p, std::string::npos) << name << " missing or out of order:\n" << r.out;
    at = p + 1;
  }
  for (const auto& e : list->entries) {
    std::vector<std::string> want = {e.name, ckpt::CheckpointStateName(e.state), std::to_string(e.step)};
    if (e.manifest) {
      want.insert(want.end(), {"2", "2", "fp32", std::to_string(e.bytes), e.manifest->created});
      EXPECT_GT(e.bytes, 0u);
    } else {
      for (int i = 0; i < 5; ++i) want.push_back("-");
    }
    EXPECT_EQ(Row(r.out, e.name), want) << r.out;
  }
  EXPECT_TRUE(Has(r.out, "step-000000000005  invalid")) << r.out;
  EXPECT_TRUE(Has(r.out, std::string(kStep10) + "  committed")) << r.out;
  EXPECT_TRUE(Has(r.out, std::string(kStep20) + "  LATEST")) << r.out;
  EXPECT_TRUE(Has(r.out, "step-000000000030  incomplete")) << r.out;
  EXPECT_TRUE(Has(r.out, "step-000000000040  uncommitted")) << r.out;
  EXPECT_TRUE(Has(r.out, "step-000000000030: no manifest")) << r.out;
  EXPECT_TRUE(Has(r.out, "step-000000000005: " + dir + "/step-000000000005/manifest.json: not valid JSON")) << r.out;
  EXPECT_TRUE(Has(r.out, "LATEST: " + std::string(kStep20))) << r.out;

  r = Run("ckpt ls --json " + dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["latest"], kStep20);
  EXPECT_TRUE(j["latest_problem"].is_null());
  ASSERT_EQ(j["checkpoints"].size(), list->entries.size());
  for (size_t i = 0; i < list->entries.size(); ++i) {
    const auto& e = list->entries[i];
    const auto& c = j["checkpoints"][i];
    EXPECT_EQ(c["name"], e.name);
    EXPECT_EQ(c["state"], ckpt::CheckpointStateName(e.state));
    EXPECT_EQ(c["step"], e.step);
    if (e.manifest) {
      EXPECT_EQ(c["bytes"], e.bytes);
      EXPECT_EQ(c["world_size"], 2);
      EXPECT_EQ(c["zero_stage"], 2);
      EXPECT_EQ(c["precision"], "fp32");
      EXPECT_EQ(c["created"], e.manifest->created);
    } else {
      EXPECT_EQ(c["problem"], e.problem);
    }
  }
}

// ---- verify ----

TEST_F(CkptCli, VerifyChecksLatestAStepOrAll) {
  auto v = ckpt::Verify(Pristine(), "");
  ASSERT_TRUE(v.ok());
  auto before = Contents(Pristine());
  CliRun r = Run("ckpt verify " + Pristine());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "OK " + Pristine() + "/" + kStep20 + ": 2 shards, " + std::to_string(v->bytes) + " bytes"))
      << r.out;
  EXPECT_TRUE(Has(r.out, "GB/s")) << r.out;
  r = Run("ckpt verify " + Pristine() + " --step 10");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "OK " + Pristine() + "/" + kStep10 + ": 2 shards")) << r.out;
  r = Run("ckpt verify --all " + Pristine());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "OK " + Pristine() + "/" + kStep10)) << r.out;
  EXPECT_TRUE(Has(r.out, "OK " + Pristine() + "/" + kStep20)) << r.out;
  EXPECT_TRUE(Has(r.out, "all 2 committed checkpoints")) << r.out;
  EXPECT_EQ(Contents(Pristine()), before);
  // A step that is not there, and --step with --all.
  ExpectFails("ckpt verify " + Pristine() + " --step 15", Pristine(), {"no checkpoint of step 15", "ztrain ckpt ls"});
  r = Run("ckpt verify " + Pristine() + " --all --step 10");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Has(r.err, "excludes")) << r.err;
}

// ---- inspect ----

TEST_F(CkptCli, InspectSummarizesTheManifest) {
  auto reader = ckpt::CheckpointReader::Open(Pristine(), ckpt::kLatestStep);
  ASSERT_TRUE(reader.ok());
  const ckpt::Manifest& m = (*reader)->manifest();
  CliRun r = Run("ckpt inspect " + Pristine());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const std::string& s :
       {std::string("checkpoint ") + Pristine() + "/" + kStep20, std::string("step 20, applied updates 19"),
        std::string("world size 2, ZeRO stage 2, precision fp32"),
        std::string("loss scaler: scale 65536, iter 20, last overflow iter 3, hysteresis left 2"),
        std::string("sampler: epoch 1, position 160"), std::string("seed 1234"), "created " + m.created,
        std::string("model config model/config.json")})
    EXPECT_TRUE(Has(r.out, s)) << "missing '" << s << "' in\n" << r.out;
  ASSERT_GT(m.layout.units.size(), 5u);  // blocks split into several units
  EXPECT_TRUE(std::any_of(m.layout.units.begin(), m.layout.units.end(),
                          [](const passes::ZeroUnit& u) { return u.padded > u.numel; }));
  for (const auto& u : m.layout.units) {
    std::vector<std::string> want = {u.name, std::to_string(u.params.size()), std::to_string(u.numel),
                                     std::to_string(u.padded), std::to_string(u.shard), "f32",
                                     u.weight_decay == 0 ? "0" : "0.1"};
    EXPECT_EQ(Row(r.out, u.name), want) << r.out;
  }
  for (const auto& s : m.shards) {
    std::vector<std::string> want = {std::to_string(s.rank), s.file, std::to_string(s.bytes), s.checksum,
                                     std::to_string(s.sections.size())};
    EXPECT_EQ(Row(r.out, std::to_string(s.rank)), want) << r.out;
  }
  r = Run("ckpt inspect -v " + Pristine() + " --step 10");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "step 10, applied updates 9")) << r.out;
  EXPECT_TRUE(Has(r.out, m.layout.units[0].params[0].name)) << r.out;
  EXPECT_TRUE(Has(r.out, m.shards[1].sections.back().name)) << r.out;

  r = Run("ckpt inspect --json " + Pristine());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  auto parsed = ckpt::ParseManifest(j, "inspect output");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(ckpt::ToJson(*parsed), ckpt::ToJson(m));
}

// ---- corruption ----

TEST_F(CkptCli, FlippedByteFailsVerifyAndExport) {
  const std::string dir = CopyOfCheckpoints();
  const std::string shard = dir + "/" + kStep20 + "/rank-00001.shard";
  std::string bytes = ReadBytes(shard);
  bytes[ckpt::kShardDataOffset + 1000] ^= 0x10;
  WriteBytes(shard, bytes);
  ExpectFails("ckpt verify " + dir, dir, {shard, "checksum", "corrupt"});
  ExpectFails("ckpt export " + dir + " --safetensors " + work_.File("out") + " --model-config " + ModelConfigPath(),
              dir, {shard, "checksum"});
  EXPECT_FALSE(fs::exists(work_.File("out/model.safetensors")));
  // --all still vouches for the older checkpoint.
  CliRun r = Run("ckpt verify --all " + dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Has(r.out, "OK " + dir + "/" + kStep10)) << r.out;
  EXPECT_TRUE(Has(r.err, shard)) << r.err;
  EXPECT_TRUE(Has(r.err, "1 of 2 checks")) << r.err;
  // The header: the same error class, another message.
  bytes = ReadBytes(shard);
  bytes[20] ^= 0x01;
  WriteBytes(shard, bytes);
  ExpectFails("ckpt verify " + dir, dir, {shard, "header"});
}

TEST_F(CkptCli, TruncatedShardFails) {
  const std::string dir = CopyOfCheckpoints();
  const std::string shard = dir + "/" + kStep20 + "/rank-00000.shard";
  fs::resize_file(shard, fs::file_size(shard) - 4096);
  ExpectFails("ckpt verify " + dir, dir, {shard, "truncated"});
  // Even without the checksum pass, reading the shard checks its size first.
  ExpectFails("ckpt export " + dir + " --no-verify --safetensors " + work_.File("out") + " --model-config " +
                  ModelConfigPath(),
              dir, {shard, "truncated"});
  fs::resize_file(shard, 10);
  ExpectFails("ckpt verify " + dir, dir, {shard, "truncated"});
}

TEST_F(CkptCli, DeletedManifestFails) {
  const std::string dir = CopyOfCheckpoints();
  const std::string manifest = dir + "/" + kStep20 + "/manifest.json";
  fs::remove(manifest);
  for (const char* cmd : {"verify", "inspect"})
    ExpectFails(std::string("ckpt ") + cmd + " " + dir, dir, {manifest + " is missing", "ztrain ckpt ls"});
  ExpectFails("ckpt export " + dir + " --safetensors " + work_.File("out"), dir, {manifest + " is missing"});
  CliRun r = Run("ckpt ls " + dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "LATEST is unusable: " + dir + "/LATEST names " + kStep20 + ", which is incomplete")) << r.out;
  EXPECT_TRUE(Has(r.out, std::string("the newest checkpoint with a valid manifest is ") + kStep10)) << r.out;
  EXPECT_TRUE(Has(r.out, "--step 10")) << r.out;
  // The older checkpoint is still whole and usable by step.
  r = Run("ckpt verify " + dir + " --step 10");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = Run("ckpt verify --all " + dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Has(r.err, "LATEST names " + std::string(kStep20))) << r.err;
}

TEST_F(CkptCli, GarbledLatestFails) {
  const std::string dir = CopyOfCheckpoints();
  WriteBytes(dir + "/LATEST", "step-0000\x01garbage");
  for (const char* cmd : {"verify", "inspect"})
    ExpectFails(std::string("ckpt ") + cmd + " " + dir, dir, {dir + "/LATEST holds", "not a checkpoint name"});
  ExpectFails("ckpt export " + dir + " --safetensors " + work_.File("out"), dir, {dir + "/LATEST holds"});
  CliRun r = Run("ckpt ls " + dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "LATEST is unusable: " + dir + "/LATEST holds")) << r.out;
  EXPECT_TRUE(Has(r.out, std::string("the newest checkpoint with a valid manifest is ") + kStep20)) << r.out;
  r = Run("ckpt verify " + dir + " --step 20");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // --all fails on LATEST but still checks what a restart would consider.
  r = Run("ckpt verify --all " + dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Has(r.out, "has an unreadable LATEST")) << r.out;
  EXPECT_TRUE(Has(r.out, "OK " + dir + "/" + kStep10)) << r.out;
  EXPECT_TRUE(Has(r.out, "OK " + dir + "/" + kStep20)) << r.out;
  EXPECT_TRUE(Has(r.err, dir + "/LATEST holds")) << r.err;
  // LATEST naming a directory that is not there.
  WriteBytes(dir + "/LATEST", "step-000000000099\n");
  ExpectFails("ckpt verify " + dir, dir, {dir + "/LATEST names step-000000000099", "does not exist"});
  r = Run("ckpt ls " + dir);
  EXPECT_TRUE(Has(r.out, "LATEST is unusable: " + dir + "/LATEST names step-000000000099")) << r.out;
}

TEST_F(CkptCli, MissingShardFails) {
  const std::string dir = CopyOfCheckpoints();
  const std::string shard = dir + "/" + kStep20 + "/rank-00000.shard";
  fs::remove(shard);
  ExpectFails("ckpt verify " + dir, dir, {shard, "1 problem"});
  ExpectFails("ckpt export " + dir + " --no-verify --safetensors " + work_.File("out") + " --model-config " +
                  ModelConfigPath(),
              dir, {shard});
}

TEST_F(CkptCli, EmptyAndMissingDirectoriesFail) {
  const std::string empty = work_.File("empty");
  fs::create_directories(empty);
  for (const char* cmd : {"verify", "inspect", "verify --all"})
    ExpectFails(std::string("ckpt ") + cmd + " " + empty, empty, {empty});
  ExpectFails("ckpt verify " + empty, empty, {empty + "/LATEST is missing"});
  ExpectFails("ckpt export " + empty + " --safetensors " + work_.File("out"), empty, {empty + "/LATEST is missing"});
  CliRun r = Run("ckpt ls " + empty);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Has(r.out, "no checkpoints in " + empty)) << r.out;
  EXPECT_TRUE(Has(r.out, "LATEST: none")) << r.out;

  const std::string missing = work_.File("nowhere");
  for (const char* cmd : {"ls", "verify", "inspect", "verify --all"})
    ExpectFails(std::string("ckpt ") + cmd + " " + missing, missing, {"checkpoint directory " + missing + " does not exist"});
  ExpectFails("ckpt export " + missing + " --safetensors " + work_.File("out"), missing, {missing + " does not exist"});
  EXPECT_FALSE(fs::exists(missing));
  EXPECT_FALSE(fs::exists(work_.File("out")));
}

// ---- export ----

// Loads an export and checks every tensor against Value(step, ...) rounded through `dtype`.
void ExpectExportHolds(const std::string& out, const passes::ZeroLayout& l, int64_t step, DType dtype) {
  auto specs = models::ModelParamSpecs(TinyConfig());
  ASSERT_TRUE(specs.ok());
  auto f = models::SafetensorsFile::Open(out + "/model.safetensors");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ((*f)->entries().size(), specs->size());
  for (const auto& e : (*f)->entries()) EXPECT_EQ(e.dtype, dtype) << e.name;
  std::map<std::string, std::vector<float>> got;
  auto loaded = models::LoadWeights(out, *specs, [&](const std::string& name, const Tensor& t) {
    got[name].assign(t.as<float>(), t.as<float>() + t.numel());
    return OkStatus();
  });
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_TRUE(loaded->warnings.empty());
  size_t checked = 0;
  for (size_t u = 0; u < l.units.size(); ++u) {
    for (const auto& p : l.units[u].params) {
      ASSERT_TRUE(got.count(p.name)) << p.name;
      const auto& v = got[p.name];
      ASSERT_EQ(static_cast<int64_t>(v.size()), p.shape.numel());
      for (int64_t i = 0; i < p.shape.numel(); ++i) {
        float want = Value(step, u, 0, p.offset + i);
        if (dtype == DType::kBF16) want = BF16ToFloat(FloatToBF16(want));
        if (dtype == DType::kF16) want = HalfToFloat(FloatToHalf(want));
        ASSERT_EQ(v[i], want) << p.name << "[" << i << "]";
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, specs->size());
}

TEST_F(CkptCli, ExportWritesTheMasterWeights) {
  // The model config from the run config, relative to the run's directory.
  const std::string out = work_.File("export");
  auto before = Contents(Pristine());
  CliRun r = Run("ckpt export " + Pristine() + " --safetensors " + out, Root());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Has(r.out, "exported step 20")) << r.out;
  EXPECT_TRUE(fs::exists(out + "/config.json"));
  ExpectExportHolds(out, *layout_, 20, DType::kF32);
  auto cfg = models::LoadHfConfig(out + "/config.json");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->gpt2.n_embd, 15);

  // Another step, bf16 and f16, with --model-config from anywhere.
  r = Run("ckpt export " + Pristine() + " --step 10 --dtype bf16 --safetensors " + out + " --model-config " +
          ModelConfigPath());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ExpectExportHolds(out, *layout_, 10, DType::kBF16);
  r = Run("ckpt export " + Pristine() + " --dtype f16 --safetensors " + out + " --model-config " + ModelConfigPath());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ExpectExportHolds(out, *layout_, 20, DType::kF16);
  EXPECT_EQ(Contents(Pristine()), before);
}

TEST_F(CkptCli, ExportErrorsSayWhatToDo) {
  const std::string out = work_.File("export");
  // The run config's relative model config does not resolve from here.
  ExpectFails("ckpt export " + Pristine() + " --safetensors " + out, Pristine(),
              {"model config model/config.json", "--model-config"});
  // A model config of another model.
  const std::string other = work_.File("other.json");
  ZT_CHECK_OK(models::WriteHfConfig(TinyConfig(18), other));
  ExpectFails("ckpt export " + Pristine() + " --safetensors " + out + " --model-config " + other, Pristine(),
              {"does not describe the model of " + Pristine() + "/" + kStep20, other});
  // Exports never go into the checkpoint directory.
  ExpectFails("ckpt export " + Pristine() + " --safetensors " + Pristine() + "/" + kStep20 + "/x --model-config " +
                  ModelConfigPath(),
              Pristine(), {"inside the checkpoint directory"});
  ExpectFails("ckpt export " + Pristine() + " --safetensors " + Pristine() + " --model-config " + ModelConfigPath(),
              Pristine(), {"inside the checkpoint directory"});
  EXPECT_FALSE(fs::exists(out));
  CliRun r = Run("ckpt export " + Pristine() + " --safetensors " + out + " --dtype i32");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Has(r.err, "--dtype")) << r.err;

  // A run config without a model config.
  const std::string dir = CopyOfCheckpoints();
  auto reader = ckpt::CheckpointReader::Open(dir, ckpt::kLatestStep);
  ASSERT_TRUE(reader.ok());
  ckpt::Manifest m = (*reader)->manifest();
  m.config = nullptr;
  WriteBytes(dir + "/" + kStep20 + "/manifest.json", ckpt::ManifestText(m));
  ExpectFails("ckpt export " + dir + " --safetensors " + out, dir,
              {dir + "/" + kStep20 + "/manifest.json", "names no model config", "pass --model-config"});
  // A checkpoint whose shards lack the master sections cannot be exported, and says why.
  for (auto& s : m.shards)
    for (auto& sec : s.sections)
      if (sec.name.rfind("master/", 0) == 0) sec.name = "other/" + sec.name.substr(7);
  WriteBytes(dir + "/" + kStep20 + "/manifest.json", ckpt::ManifestText(m));
  ExpectFails("ckpt export " + dir + " --safetensors " + out + " --model-config " + ModelConfigPath(), dir,
              {dir + "/" + kStep20 + "/rank-00000.shard has no section 'master/"});
}

// ---- a real engine's checkpoint ----

struct EngineCase {
  int stage;
  config::Precision precision;
};

class EngineExport : public ::testing::TestWithParam<EngineCase> {};

// 2 ranks train 3 steps of the tiny GPT-2, snapshot, write; the export equals ReadParams.
TEST_P(EngineExport, ExportEqualsReadParams) {
  const EngineCase ec = GetParam();
  TempDir work;
  const std::string dir = work.File("ckpt"), out = work.File("export"), cfg = work.File("config.json");
  ZT_CHECK_OK(models::WriteHfConfig(TinyConfig(), cfg));
  const DType pdt = ec.precision == config::Precision::kBF16 ? DType::kBF16
                    : ec.precision == config::Precision::kF16 ? DType::kF16
                                                               : DType::kF32;
  std::map<std::string, std::vector<float>> expected;
  std::vector<std::unique_ptr<ckpt::RankSnapshot>> snaps(kWorld);
  ckpt::Manifest fields;
  auto comms = comm::CreateThreadGroup(kWorld);
  std::vector<std::thread> threads;
  for (int r = 0; r < kWorld; ++r) {
    threads.emplace_back([&, r] {
      omp_set_num_threads(1);
      CpuBackend backend;
      auto g = std::make_unique<ir::Graph>("gpt2");
      ir::Builder b(g.get());
      auto m = models::BuildModel(b, TinyConfig(), {.batch = 2, .seq = 8, .dtype = pdt});
      ZT_CHECK(m.ok()) << m.status().ToString();
      EngineOptions o;
      o.precision = ec.precision;
      o.optimizer.lr = 1e-2;
      o.optimizer.weight_decay = 0.1;
      o.zero_stage = ec.stage;
      o.comm = comms[r].get();
      o.bucket_elements = 300;
      auto e = Engine::Create(std::move(g), {m->tokens, m->targets, m->loss}, o, backend);
      ZT_CHECK(e.ok()) << e.status().ToString();
      Engine& engine = **e;
      ZT_CHECK_OK(engine.InitParams([](const std::string& name, const Tensor& t) {
        models::InitParam(name, t, {.std = 0.2, .n_layer = 2, .seed = 7});
      }));
      for (int step = 0; step < 3; ++step) {
        auto st = engine.TrainStep([&](int micro, std::vector<int32_t>& t, std::vector<int32_t>& y) {
          t.resize(16);
          y.resize(16);
          for (int i = 0; i < 16; ++i) {
            t[i] = (i * 5 + step * 3 + micro + r * 11) % 37;
            y[i] = (t[i] * 7 + 1) % 37;
          }
        });
        ZT_CHECK(st.ok()) << st.status().ToString();
      }
      snaps[r] = std::make_unique<ckpt::RankSnapshot>();
      ZT_CHECK_OK(engine.TakeSnapshot(snaps[r].get()));
      std::map<std::string, std::vector<float>> mine;
      ZT_CHECK_OK(engine.ReadParams([&](const std::string& name, const Tensor& t) {
        mine[name].assign(t.as<float>(), t.as<float>() + t.numel());
      }));
      if (r == 0) {
        expected = std::move(mine);
        fields.applied_updates = engine.state().applied_updates;
        fields.zero_stage = ec.stage;
        fields.precision = config::PrecisionName(ec.precision);
        fields.layout = engine.checkpoint_layout();
        fields.scaler.scale = engine.state().scaler.scale;
        fields.config = {{"model", {{"config", cfg}}}};
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(snaps[0]->step, 3);
  WriteCheckpoints(
      dir, {3}, [&](int64_t, int rank) { return std::move(snaps[rank]); }, [&](int64_t) { return fields; });

  CliRun r = Ztrain("ckpt export " + dir + " --safetensors " + out, work.path());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto specs = models::ModelParamSpecs(TinyConfig());
  ASSERT_TRUE(specs.ok());
  size_t seen = 0;
  auto loaded = models::LoadWeights(out, *specs, [&](const std::string& name, const Tensor& t) {
    auto it = expected.find(name);
    if (it == expected.end()) return Internal("unexpected " + name);
    EXPECT_EQ(std::vector<float>(t.as<float>(), t.as<float>() + t.numel()), it->second) << name;
    ++seen;
    return OkStatus();
  });
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(seen, expected.size());
  EXPECT_EQ(seen, specs->size());
}

INSTANTIATE_TEST_SUITE_P(StagesPrecisions, EngineExport,
                         ::testing::Values(EngineCase{0, config::Precision::kF32}, EngineCase{1, config::Precision::kBF16},
                                           EngineCase{3, config::Precision::kF32}, EngineCase{2, config::Precision::kF16}),
                         [](const ::testing::TestParamInfo<EngineCase>& i) {
                           return "stage" + std::to_string(i.param.stage) + "_" +
                                  config::PrecisionName(i.param.precision);
                         });

}  // namespace
}  // namespace zt
