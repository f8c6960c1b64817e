// Distributed training through the real binary: `ztrain launch --nproc 2 -- train` with ZeRO-3
// gives the training of one process on the same global batch (Gloo, the launcher's store, each
// rank's slice from the sampler); a worker killed mid-step makes the launcher exit non-zero naming
// it; without the launcher (ranks started by hand, as by mpirun) the surviving rank fails within
// the communication timeout with an error naming the dead rank.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "comm/tcp_store.h"
#include "data/synth.h"
#include "launch/launch_test_util.h"

namespace zt::launch {
namespace {

using namespace testing;  // NOLINT

// Synthetic data and a run.json in `dir`; returns the run.json path.
std::string WriteRun(const TempDir& dir, const std::string& name, int micro, int accum, int stage, int steps) {
  if (access(dir.File("train.bin").c_str(), F_OK) != 0) {
    data::MarkovSynthOptions so;
    so.out = dir.File("train.bin");
    so.vocab = 64;
    so.tokens = 200000;
    so.seed = 3;
    EXPECT_TRUE(data::WriteMarkovSynth(so).ok());
  }
  nlohmann::json j = {
      {"train_micro_batch_size_per_gpu", micro},
      {"gradient_accumulation_steps", accum},
      {"zero_optimization", {{"stage", stage}}},
      {"optimizer", {{"type", "AdamW"}, {"params", {{"lr", 3e-3}, {"weight_decay", 0.01}}}}},
      {"steps_per_print", 10},
      {"model", {{"config", std::string(ZT_SOURCE_DIR) + "/configs/tiny-gpt2.json"}}},
      {"data", {{"train", dir.File("train.bin")}, {"seq_len", 32}}},
      {"run", {{"steps", steps}, {"seed", 7}, {"output_dir", dir.File(name)}}}};
  std::string path = dir.File(name + ".json");
  std::ofstream(path) << j.dump(2);
  return path;
}

std::vector<double> Losses(const std::string& metrics) {
  std::vector<double> out;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) out.push_back(j["loss"].get<double>());
  }
  return out;
}

TEST(DistributedTrain, LaunchedZero3MatchesOneProcess) {
  TempDir dir;
  // 2 ranks x micro-batch 4 vs one process accumulating 2 micro-batches of 4: the same global batch.
  std::string two = WriteRun(dir, "two", 4, 1, 3, 30);
  std::string one = WriteRun(dir, "one", 4, 2, 0, 30);
  Result r2 = RunProcess({kZtrain, "launch", "--nproc", "2", "--", "train", "--config", two, "--no-progress"}, {}, dir,
                         "launch", 240);
  ASSERT_EQ(r2.exit_code(), 0) << r2.err << r2.out;
  Result r1 = RunProcess({kZtrain, "train", "--config", one, "--no-progress"}, {{"ZT_NUM_THREADS", "1"}}, dir, "one", 240);
  ASSERT_EQ(r1.exit_code(), 0) << r1.err << r1.out;
  auto l2 = Losses(dir.File("two/metrics.jsonl")), l1 = Losses(dir.File("one/metrics.jsonl"));
  ASSERT_EQ(l2.size(), 30u);
  ASSERT_EQ(l1.size(), 30u);
  for (size_t i = 0; i < l1.size(); ++i) EXPECT_NEAR(l2[i], l1[i], 1e-5 * l1[i]) << "step " << i + 1;
  EXPECT_LT(l1.back(), l1.front() - 0.5);
  // N = 2 and no clipping: every f32 operation that differs is exact, so the exported weights
  // (gathered from the ZeRO-3 shards) are the single process's, byte for byte.
  std::string w2 = ReadBytes(dir.File("two/final/model.safetensors"));
  std::string w1 = ReadBytes(dir.File("one/final/model.safetensors"));
  ASSERT_GT(w1.size(), 100000u);
  EXPECT_TRUE(w1 == w2) << "exported weights differ";
}

// The children (workers) of a process, from /proc.
std::vector<pid_t> Children(pid_t pid) {
  std::vector<pid_t> out;
  std::istringstream in(ReadBytes("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children"));
  for (pid_t c; in >> c;) out.push_back(c);
  return out;
}

TEST(DistributedTrain, KilledWorkerStopsTheJobAndIsNamed) {
  TempDir dir;
  std::string cfg = WriteRun(dir, "long", 4, 1, 2, 5000);
  Proc agent = StartProcess({kZtrain, "launch", "--nproc", "2", "--", "train", "--config", cfg, "--no-progress"}, {}, dir,
                            "agent");
  // Wait until training runs (rank 0 printed a step), then kill the other worker.
  ASSERT_TRUE(WaitForFile(dir.File("long/metrics.jsonl"), 60));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto kids = Children(agent.pid);
  ASSERT_EQ(kids.size(), 2u);
  std::string env1 = ReadBytes("/proc/" + std::to_string(kids[1]) + "/environ");
  pid_t victim = env1.find(std::string("RANK=1") + '\0') != std::string::npos ? kids[1] : kids[0];
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  Result r = WaitProcess(agent, 60);
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code(), 0);
  EXPECT_NE(r.err.find("rank 1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("SIGKILL"), std::string::npos) << r.err;
  for (pid_t k : kids) EXPECT_FALSE(ProcessExists(k)) << "worker " << k << " outlived the job";
}

TEST(DistributedTrain, WithoutLauncherTheSurvivorNamesTheDeadRank) {
  TempDir dir;
  std::string cfg = WriteRun(dir, "bare", 4, 1, 1, 5000);
  auto server = comm::TcpStoreServer::Start("127.0.0.1", 0, "secret-token");
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  int port = (*server)->port();
  auto env = [&](int rank) -> EnvPairs {
    return {{"RANK", std::to_string(rank)},  {"WORLD_SIZE", "2"},  {"LOCAL_RANK", std::to_string(rank)},
            {"LOCAL_WORLD_SIZE", "2"},       {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", std::to_string(port)},
            {"ZT_STORE", "127.0.0.1:" + std::to_string(port)}, {"ZT_STORE_TOKEN", "secret-token"},
            {"ZT_COMM_TIMEOUT_S", "10"},     {"ZT_NUM_THREADS", "1"}};
  };
  std::vector<std::string> argv = {kZtrain, "train", "--config", cfg, "--no-progress"};
  Proc r0 = StartProcess(argv, env(0), dir, "rank0");
  Proc r1 = StartProcess(argv, env(1), dir, "rank1");
  ASSERT_TRUE(WaitForFile(dir.File("bare/metrics.jsonl"), 60));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto killed_at = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(r1.pid, SIGKILL), 0);
  WaitProcess(r1, 10);
  Result r = WaitProcess(r0, 60);
  double after_kill = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code(), 0);
  EXPECT_LT(after_kill, 10 + 5) << "the survivor must fail within the communication timeout";
  EXPECT_NE(r.err.find("rank 1"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace zt::launch
