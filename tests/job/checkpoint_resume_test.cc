// Checkpoints through the whole training job (job::RunTraining with its Checkpointer; N ranks as
// threads over a ThreadCommunicator and one MemoryStore, checkpoints in real files):
//  - bit-exact resume: 20 steps straight vs 10 steps, stop, resume to 20: the same losses for
//    steps 11-20 and byte-identical final weights, for ZeRO 0-3 x N = 1, 2, 4 x fp32/bf16/fp16;
//  - the host-memory tier alone (disk checkpoints deleted) resumes bit-exactly, also at stage 0
//    where a rank reads its peers' segments;
//  - a corrupt newest checkpoint is skipped with a warning and the previous one resumes;
//  - reshard: a checkpoint of N = 4 continues on M = 2 and M = 3 with N = 4's losses within the
//    f32 reduction tolerance (the ranks' gradient sums are added in a different grouping).
#include <gtest/gtest.h>

#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "backend/cpu/cpu_backend.h"
#include "comm/memory_store.h"
#include "comm/thread_communicator.h"
#include "config/run_config.h"
#include "data/synth.h"
#include "job/train_job.h"
#include "support/temp_dir.h"

namespace zt {
namespace {

struct Setup {
  std::string dir;  // data, outputs
};

const std::string& DataDir() {
  static const std::string dir = [] {
    std::string d = ::testing::TempDir() + "zt_resume_data." + std::to_string(getpid());
    std::filesystem::create_directories(d);
    data::MarkovSynthOptions so;
    so.out = d + "/train.bin";
    so.vocab = 64;
    so.tokens = 200000;
    so.branching = 2;
    so.seed = 1;
    ZT_CHECK(data::WriteMarkovSynth(so).ok());
    return d;
  }();
  return dir;
}

struct RunSpec {
  int world = 1;
  int stage = 0;
  std::string precision = "fp32";
  int steps = 20;
  int global_batch = 8;
  std::string out;                   // run.output_dir
  int interval = 0;                  // checkpoint.interval (0: no checkpoints)
  std::string ckpt_dir;              // default <out>/checkpoints
  std::vector<std::string> tiers = {"disk"};
};

config::RunConfig MakeConfig(const RunSpec& s) {
  nlohmann::json j = nlohmann::json::parse(std::ifstream(std::string(ZT_SOURCE_DIR) + "/configs/tiny-run.json"));
  j.erase("train_micro_batch_size_per_gpu");
  j["train_batch_size"] = s.global_batch;
  j["gradient_accumulation_steps"] = 1;
  j["model"]["config"] = std::string(ZT_SOURCE_DIR) + "/configs/tiny-gpt2.json";
  j["data"] = {{"train", DataDir() + "/train.bin"}, {"seq_len", 16}};
  j["run"] = {{"steps", s.steps}, {"seed", 7}, {"output_dir", s.out}};
  j["scheduler"]["params"]["total_num_steps"] = 20;
  j["scheduler"]["params"]["warmup_num_steps"] = 5;
  j["zero_optimization"] = {{"stage", s.stage}};
  if (s.precision != "fp32") j[s.precision] = {{"enabled", true}};
  if (s.precision == "fp16") j["fp16"]["initial_scale_power"] = 8;
  if (s.interval > 0) {
    j["checkpoint"] = {{"interval", s.interval}, {"tiers", s.tiers}, {"keep_last", 3}};
    if (!s.ckpt_dir.empty()) j["checkpoint"]["dir"] = s.ckpt_dir;
  }
  auto c = config::ParseRunConfig(j, s.world, "test run.json", "");
  ZT_CHECK(c.ok()) << c.status().ToString();
  return *c;
}

// Runs every rank as a thread; returns rank 0's result (or the first error).
StatusOr<job::TrainResult> RunJob(const RunSpec& s) {
  config::RunConfig c = MakeConfig(s);
  auto comms = s.world > 1 ? comm::CreateThreadGroup(s.world) : std::vector<std::unique_ptr<comm::Communicator>>{};
  comm::MemoryStore store;
  std::vector<StatusOr<job::TrainResult>> results(s.world, Internal("not run"));
  std::vector<std::thread> threads;
  for (int r = 0; r < s.world; ++r) {
    threads.emplace_back([&, r] {
      CpuBackend backend;
      omp_set_num_threads(1);  // ranks are threads: one OpenMP thread each
      job::TrainOptions o;
      o.comm = s.world > 1 ? comms[r].get() : nullptr;
      o.store = &store;
      results[r] = job::RunTraining(c, backend, o);
    });
  }
  for (auto& t : threads) t.join();
  for (auto& r : results)
    if (!r.ok()) return r.status();
  return results[0];
}

struct GridCase {
  int stage;
  int world;
  std::string precision;
};

class ResumeGrid : public ::testing::TestWithParam<GridCase> {};

TEST_P(ResumeGrid, TenStepsThenResumeEqualsTwentyStraight) {
  const GridCase& g = GetParam();
  zt::testing::TempDir tmp("zt_resume_grid_s" + std::to_string(g.stage) + "_n" + std::to_string(g.world) + "_" + g.precision + "_");
  const std::string dir = tmp.path();
  RunSpec straight{.world = g.world, .stage = g.stage, .precision = g.precision, .out = dir + "/straight"};
  auto a = RunJob(straight);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_EQ(a->losses.size(), 20u);

  RunSpec first = straight;
  first.out = dir + "/resumed";
  first.steps = 10;
  first.interval = 4;  // checkpoints at 4, 8 and the last step, 10
  auto b1 = RunJob(first);
  ASSERT_TRUE(b1.ok()) << b1.status().ToString();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(b1->losses[i], a->losses[i]) << "step " << i + 1;
  ASSERT_TRUE(std::filesystem::exists(first.out + "/checkpoints/step-000000000010/manifest.json"));

  RunSpec second = first;
  second.steps = 20;
  auto b2 = RunJob(second);
  ASSERT_TRUE(b2.ok()) << b2.status().ToString();
  ASSERT_EQ(b2->first_step, 11);
  ASSERT_EQ(b2->losses.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(b2->losses[i], a->losses[10 + i]) << "step " << 11 + i;
  std::string wa = zt::testing::ReadBytes(straight.out + "/final/model.safetensors");
  ASSERT_FALSE(wa.empty());
  EXPECT_TRUE(wa == zt::testing::ReadBytes(second.out + "/final/model.safetensors")) << "final weights differ";
}

std::vector<GridCase> Grid() {
  std::vector<GridCase> out;
  for (int stage : {0, 1, 2, 3})
    for (int world : {1, 2, 4})
      for (const char* p : {"fp32", "bf16", "fp16"}) out.push_back({stage, world, p});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Job, ResumeGrid, ::testing::ValuesIn(Grid()), [](const auto& info) {
  return "Stage" + std::to_string(info.param.stage) + "N" + std::to_string(info.param.world) + info.param.precision;
});

// Host memory alone: the disk tier is off, so only the shared-memory segments can resume.
class HostTierResume : public ::testing::TestWithParam<int> {};

TEST_P(HostTierResume, ResumesFromSharedMemoryBitExactly) {
  const int stage = GetParam();
  zt::testing::TempDir tmp("zt_resume_host_s" + std::to_string(stage) + "_");
  const std::string dir = tmp.path();
  const std::string prefix = "/zt-test-" + std::to_string(getpid()) + "-s" + std::to_string(stage);
  ASSERT_EQ(setenv("ZT_SHM_PREFIX", prefix.c_str(), 1), 0);
  RunSpec straight{.world = 2, .stage = stage, .out = dir + "/straight"};
  auto a = RunJob(straight);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  RunSpec first = straight;
  first.out = dir + "/resumed";
  first.steps = 10;
  first.interval = 5;
  first.tiers = {"host"};
  ASSERT_TRUE(RunJob(first).ok());
  EXPECT_FALSE(std::filesystem::exists(first.out + "/checkpoints"));
  RunSpec second = first;
  second.steps = 20;
  auto b = RunJob(second);
  for (int r = 0; r < 2; ++r) std::filesystem::remove("/dev/shm" + prefix + "-r" + std::to_string(r));
  unsetenv("ZT_SHM_PREFIX");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_EQ(b->first_step, 11);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(b->losses[i], a->losses[10 + i]) << "step " << 11 + i;
  EXPECT_TRUE(zt::testing::ReadBytes(straight.out + "/final/model.safetensors") == zt::testing::ReadBytes(second.out + "/final/model.safetensors"));
}

INSTANTIATE_TEST_SUITE_P(Job, HostTierResume, ::testing::Values(0, 1, 3));

TEST(CheckpointResume, ACorruptNewestCheckpointFallsBackToThePreviousOne) {
  zt::testing::TempDir tmp("zt_resume_corrupt_");
  const std::string dir = tmp.path();
  RunSpec straight{.world = 2, .stage = 2, .out = dir + "/straight"};
  auto a = RunJob(straight);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  RunSpec first = straight;
  first.out = dir + "/resumed";
  first.steps = 10;
  first.interval = 5;
  ASSERT_TRUE(RunJob(first).ok());
  // Flip one byte in the middle of rank 1's shard of step 10.
  const std::string shard = first.out + "/checkpoints/step-000000000010/rank-00001.shard";
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good());
    f.seekg(5000);
    char c = 0;
    f.read(&c, 1);
    c ^= 0x40;
    f.seekp(5000);
    f.write(&c, 1);
  }
  RunSpec second = first;
  second.steps = 20;
  auto b = RunJob(second);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->first_step, 6) << "step 10's checkpoint is corrupt: step 5's must be used";
  for (size_t i = 0; i < b->losses.size(); ++i) EXPECT_EQ(b->losses[i], a->losses[5 + i]) << "step " << 6 + i;
  EXPECT_TRUE(zt::testing::ReadBytes(straight.out + "/final/model.safetensors") == zt::testing::ReadBytes(second.out + "/final/model.safetensors"));
}

TEST(CheckpointResume, AGarbledLatestStillFindsAVerifiedCheckpoint) {
  zt::testing::TempDir tmp("zt_resume_garbled_");
  const std::string dir = tmp.path();
  RunSpec first{.world = 1, .stage = 1, .steps = 10, .out = dir + "/run", .interval = 5};
  ASSERT_TRUE(RunJob(first).ok());
  { std::ofstream(first.out + "/checkpoints/LATEST") << "step-0000000\x01garbage"; }
  RunSpec second = first;
  second.steps = 12;
  auto b = RunJob(second);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->first_step, 11);
}

TEST(CheckpointResume, ResumeNeverRefusesADirectoryWithCheckpoints) {
  zt::testing::TempDir tmp("zt_resume_never_");
  const std::string dir = tmp.path();
  RunSpec first{.world = 1, .stage = 0, .steps = 4, .out = dir + "/run", .interval = 2};
  ASSERT_TRUE(RunJob(first).ok());
  config::RunConfig c = MakeConfig(first);
  c.checkpoint.resume = false;
  CpuBackend backend;
  auto r = job::RunTraining(c, backend, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("already holds checkpoints"), std::string::npos) << r.status().ToString();
  EXPECT_TRUE(std::filesystem::exists(first.out + "/checkpoints/step-000000000004/manifest.json"));
}

class Reshard : public ::testing::TestWithParam<int> {};

TEST_P(Reshard, FourRanksContinueOnTwoAndThree) {
  const int stage = GetParam();
  zt::testing::TempDir tmp("zt_resume_reshard_s" + std::to_string(stage) + "_");
  const std::string dir = tmp.path();
  RunSpec four{.world = 4, .stage = stage, .global_batch = 12, .out = dir + "/four"};
  auto a = RunJob(four);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  RunSpec writer = four;
  writer.out = dir + "/writer";
  writer.steps = 10;
  writer.interval = 10;
  ASSERT_TRUE(RunJob(writer).ok());
  for (int m : {2, 3}) {
    RunSpec cont = writer;
    cont.world = m;
    cont.steps = 20;
    cont.out = dir + "/m" + std::to_string(m);
    cont.ckpt_dir = writer.out + "/checkpoints";
    cont.interval = 100;  // resume from the writer's checkpoints; save only the last step
    auto b = RunJob(cont);
    ASSERT_TRUE(b.ok()) << "M=" << m << ": " << b.status().ToString();
    ASSERT_EQ(b->first_step, 11) << "M=" << m;
    for (int i = 0; i < 10; ++i) {
      double want = a->losses[10 + i], got = b->losses[i];
      EXPECT_NEAR(got, want, 2e-5 * std::abs(want)) << "M=" << m << " step " << 11 + i;
    }
    // Keep the writer's checkpoint as the newest for the next M.
    std::filesystem::remove_all(writer.out + "/checkpoints/step-000000000020");
    std::ofstream(writer.out + "/checkpoints/LATEST") << "step-000000000010\n";
  }
}

INSTANTIATE_TEST_SUITE_P(Job, Reshard, ::testing::Values(0, 1, 2, 3));

}  // namespace
}  // namespace zt
