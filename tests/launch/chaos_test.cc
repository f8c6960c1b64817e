// Chaos: one training run of the tiny GPT-2 (2 ranks, ZeRO-2, a checkpoint after every step to
// host memory and disk, keep_last 2) under `ztrain launch --max-restarts <many>` with a user-given
// ZT_SHM_PREFIX, while a seeded harness SIGKILLs kKills times:
//   - whom: a random worker (the agent restarts the gang), or about one time in five the agent
//     itself; then the harness starts `ztrain launch` again (same config, same prefix), and every
//     other time it first removes the host-memory segments, as a reboot of the node would, so
//     that the next gang resumes from disk;
//   - when: once training got 1-4 steps past the step the previous kill saw (so the run always
//     moves forward), at a random time within the next step and a half, or (about one time in
//     three) right as a checkpoint starts or commits: inotify on the checkpoint directory sees a
//     new step-* directory (shards being written) or LATEST.tmp, and the kill follows at once or
//     within 3 ms, or (about one time in five, never twice in a row) while the gang that
//     followed the last kill starts up: joining, choosing and reading its restore, collecting
//     the leftovers in the checkpoint directory.
// The run must then end (exit 0) with final weights byte-identical to an uninterrupted run of the
// same config, and every step's loss and gradient norm in the final metrics (appended on each
// resume: the last record of each step, and every earlier record of a replayed step too) equal to
// the uninterrupted run's. The seed is printed (rerun one with ZT_CHAOS_SEED=<seed>), and so are
// the kills and how many gangs resumed from host memory and how many from disk. Nothing of the
// run may be left running, and its /dev/shm segments are removed at the end.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "ckpt/host_store.h"
#include "data/synth.h"
#include "launch/launch_test_util.h"

namespace zt::launch {
namespace {

using namespace testing;  // NOLINT
using Clock = std::chrono::steady_clock;

constexpr int kKills = 30;           // at least 20, as issue 6 asks
constexpr int kSteps = 250;          // more than kKills kills can use up (each takes 1-6 steps)
constexpr double kKillPhaseS = 150;  // the kills must be done by then
constexpr double kFinishS = 120;     // and the run finished this long after the last one

// Synthetic data (once per directory) and a run.json; returns its path.
std::string WriteRun(const TempDir& dir, const std::string& name) {
  if (access(dir.File("train.bin").c_str(), F_OK) != 0) {
    data::MarkovSynthOptions so;
    so.out = dir.File("train.bin");
    so.vocab = 64;
    so.tokens = 100000;
    so.seed = 5;
    EXPECT_TRUE(data::WriteMarkovSynth(so).ok());
  }
  nlohmann::json j = {
      {"train_micro_batch_size_per_gpu", 4},
      {"gradient_accumulation_steps", 1},
      {"zero_optimization", {{"stage", 2}}},
      {"optimizer", {{"type", "AdamW"}, {"params", {{"lr", 3e-3}, {"weight_decay", 0.01}}}}},
      {"steps_per_print", 1000},
      {"model", {{"config", std::string(ZT_SOURCE_DIR) + "/configs/tiny-gpt2.json"}}},
      {"data", {{"train", dir.File("train.bin")}, {"seq_len", 16}}},
      {"run", {{"steps", kSteps}, {"seed", 11}, {"output_dir", dir.File(name)}}},
      {"checkpoint", {{"interval", 1}, {"tiers", {"host", "disk"}}, {"keep_last", 2}}}};
  std::string path = dir.File(name + ".json");
  std::ofstream(path) << j.dump(2);
  return path;
}

std::vector<std::string> LaunchArgs(const std::string& config) {
  return {kZtrain, "launch", "--nproc", "2", "--max-restarts", "1000", "--grace-period", "1",
          "--", "train", "--config", config, "--no-progress"};
}

// Every step record of a metrics file, in file order: step -> its records' (loss, grad_norm) as
// JSON text (exactly what was written). Lines that do not parse are reported.
using Records = std::map<int64_t, std::vector<std::pair<std::string, std::string>>>;
Records ReadRecords(const std::string& path) {
  Records out;
  std::ifstream in(path);
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      ADD_FAILURE() << path << ":" << line_no << " is not a JSON record: " << line;
      continue;
    }
    if (!j.contains("loss") || !j.contains("step")) continue;
    out[j["step"].get<int64_t>()].push_back({j["loss"].dump(), j["grad_norm"].dump()});
  }
  return out;
}

// The step of the last complete record in the metrics file (0 when none).
int64_t LastStep(const std::string& path) {
  std::string bytes = ReadBytes(path);
  size_t end = bytes.rfind('\n');
  if (end == std::string::npos) return 0;
  size_t start = bytes.rfind('\n', end - 1);
  start = start == std::string::npos ? 0 : start + 1;
  auto j = nlohmann::json::parse(bytes.substr(start, end - start), nullptr, false);
  if (j.is_discarded() || !j.contains("step")) return 0;
  return j["step"].get<int64_t>();
}

// The mean wall time of a step in a metrics file (its records' "time" stamps).
double StepSeconds(const std::string& path) {
  std::vector<double> t;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.contains("time") && j.contains("loss")) t.push_back(j["time"].get<double>());
  }
  return t.size() < 2 ? 0 : (t.back() - t.front()) / static_cast<double>(t.size() - 1);
}

// The workers of an agent (its children less its guard), by rank.
std::map<int, pid_t> Workers(pid_t agent) {
  std::map<int, pid_t> out;
  std::istringstream in(ReadBytes("/proc/" + std::to_string(agent) + "/task/" + std::to_string(agent) + "/children"));
  for (pid_t c; in >> c;) {
    if (ReadBytes("/proc/" + std::to_string(c) + "/comm") == "ztrain-guard\n") continue;
    std::string env = '\0' + ReadBytes("/proc/" + std::to_string(c) + "/environ");
    for (int rank : {0, 1})
      if (env.find(std::string("\0RANK=", 6) + std::to_string(rank) + '\0') != std::string::npos) out[rank] = c;
  }
  return out;
}

// inotify on the checkpoint directory: names created in it (or renamed into it).
class DirWatch {
 public:
  explicit DirWatch(const std::string& dir) {
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    EXPECT_GE(fd_, 0) << strerror(errno);
    EXPECT_GE(inotify_add_watch(fd_, dir.c_str(), IN_CREATE | IN_MOVED_TO), 0) << dir << ": " << strerror(errno);
  }
  ~DirWatch() { close(fd_); }
  void Drain() {
    char buf[8192];
    while (read(fd_, buf, sizeof(buf)) > 0) {
    }
  }
  // Waits up to timeout_ms for a new name that `want` accepts; returns it, or "" on timeout.
  template <typename Pred>
  std::string WaitFor(Pred want, int timeout_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    alignas(inotify_event) char buf[8192];
    while (Clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 1))) <= 0) continue;
      ssize_t n = read(fd_, buf, sizeof(buf));
      for (ssize_t off = 0; off < n;) {
        auto* e = reinterpret_cast<inotify_event*>(buf + off);
        std::string name = e->len > 0 ? std::string(e->name) : std::string();
        if (!name.empty() && want(name)) return name;
        off += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
      }
    }
    return "";
  }

 private:
  int fd_ = -1;
};

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Whether the agent has exited (reaps it then; its status in *status).
bool Exited(const Proc& agent, int* status) { return waitpid(agent.pid, status, WNOHANG) == agent.pid; }

// Kills whatever is left of the run and removes its host-memory segments, however the test ends.
struct Cleanup {
  std::string prefix;
  pid_t agent = -1;
  ~Cleanup() {
    if (agent > 0 && ProcessExists(agent)) {
      for (const auto& [rank, pid] : Workers(agent)) kill(pid, SIGKILL);
      kill(agent, SIGKILL);
      waitpid(agent, nullptr, 0);
    }
    if (!prefix.empty()) (void)ckpt::RemoveHostSegments(prefix);
  }
};

TEST(Chaos, RandomKillsOfWorkersAndAgentLeaveTheRunBitIdentical) {
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("ZT_CHAOS_SEED")) seed = std::strtoull(s, nullptr, 10);
  std::printf("chaos seed %llu (rerun with ZT_CHAOS_SEED=%llu)\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  RecordProperty("chaos_seed", std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  TempDir dir;
  const std::string ref_cfg = WriteRun(dir, "ref");
  const std::string chaos_cfg = WriteRun(dir, "chaos");
  const EnvPairs common = {{"ZT_NUM_THREADS", "1"}, {"ZT_COMM_TIMEOUT_S", "20"}};

  // The uninterrupted run (its own agent-made prefix, removed when it exits).
  const auto ref_start = Clock::now();
  Result ref = RunProcess(LaunchArgs(ref_cfg), common, dir, "ref", 120);
  ASSERT_EQ(ref.exit_code(), 0) << ref.err;
  const double step_us = StepSeconds(dir.File("ref/metrics.jsonl")) * 1e6;
  ASSERT_GT(step_us, 0);
  std::printf("uninterrupted run: %.1f s, %.1f ms a step\n", Since(ref_start), step_us / 1000);

  Cleanup cleanup;
  cleanup.prefix = "/ztest-chaos-" + std::to_string(getpid()) + "-" + std::to_string(seed % 1000000);
  EnvPairs env = common;
  env.push_back({"ZT_SHM_PREFIX", cleanup.prefix});
  const std::string metrics = dir.File("chaos/metrics.jsonl");
  const std::string ckpt_dir = dir.File("chaos/checkpoints");
  std::filesystem::create_directories(ckpt_dir);  // to watch it from the start
  DirWatch watch(ckpt_dir);

  int agents = 0;
  auto start_agent = [&] {
    Proc p = StartProcess(LaunchArgs(chaos_cfg), env, dir, "agent" + std::to_string(agents++));
    cleanup.agent = p.pid;
    return p;
  };
  Proc agent = start_agent();
  const auto chaos_start = Clock::now();
  int kills = 0, agent_kills = 0, write_kills = 0, reboots = 0, startup_kills = 0;
  bool last_at_startup = false;
  std::set<pid_t> seen;        // every worker pid the harness saw
  int reboots_with_disk = 0;  // reboots when a disk checkpoint was committed: the next gang resumes from disk
  int64_t reached = 0;  // the newest step in the metrics when the last kill was made
  int status = 0;
  auto ended_early = [&](const std::string& while_what) {
    return "the run ended (status " + std::to_string(status) + ") after only " + std::to_string(kills) +
           " kills, while " + while_what + "; its stderr:\n" +
           ReadBytes(dir.File("agent" + std::to_string(agents - 1) + ".err"));
  };
  while (kills < kKills) {
    ASSERT_LT(Since(chaos_start), kKillPhaseS) << kills << " kills so far; the run is too slow for the test";
    // About one time in five (never twice in a row, so that the run moves forward), the gang
    // after the last kill is killed while it starts: joining, choosing and reading what to
    // resume from, collecting the checkpoint directory's leftovers.
    const bool at_startup = kills > 0 && !last_at_startup && uniform(0, 4) == 0;
    last_at_startup = at_startup;
    if (!at_startup) {
      // Progress first: the current gang must have got 1-4 steps past what the last kill saw.
      const int64_t target = reached + uniform(1, 4);
      while (LastStep(metrics) < target) {
        ASSERT_FALSE(Exited(agent, &status)) << ended_early("waiting for progress");
        ASSERT_LT(Since(chaos_start), kKillPhaseS) << "no progress past step " << reached;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    const bool kill_agent = uniform(0, 4) == 0;
    const bool mid_write = !at_startup && uniform(0, 2) == 0;
    std::string when;
    bool at_checkpoint = false;
    if (at_startup) {
      // Once a worker of a new gang runs: then within half a second.
      ASSERT_TRUE(Eventually(
          [&] {
            for (const auto& [rank, pid] : Workers(agent.pid))
              if (!seen.count(pid)) return true;
            return false;
          },
          20))
          << "no new gang started after kill " << kills;
      const int delay_ms = uniform(0, 500);
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      when = "start-up +" + std::to_string(delay_ms) + "ms";
    } else if (mid_write) {
      // Right as a checkpoint starts (its step directory appears: shards being written) or
      // commits (LATEST.tmp appears), at once or a few milliseconds later.
      const bool at_commit = uniform(0, 1) == 1;
      const int delay_us = uniform(0, 1) ? 0 : uniform(0, 3000);
      watch.Drain();
      std::string name = watch.WaitFor(
          [&](const std::string& n) { return at_commit ? n == "LATEST.tmp" : n.rfind("step-", 0) == 0; }, 5000);
      if (!name.empty()) {
        if (delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
        when = name + " appeared" + (delay_us > 0 ? " +" + std::to_string(delay_us) + "us" : "");
        at_checkpoint = true;
      } else {
        when = "no checkpoint seen for 5 s";
      }
    } else {
      // Somewhere in the next step and a half.
      const int delay_us = uniform(0, static_cast<int>(1.5 * step_us));
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
      when = "+" + std::to_string(delay_us / 1000) + "ms";
    }
    ASSERT_FALSE(Exited(agent, &status)) << ended_early("about to kill");
    const std::map<int, pid_t> workers = Workers(agent.pid);
    for (const auto& [rank, pid] : workers) seen.insert(pid);
    if (kill_agent) {
      ASSERT_EQ(kill(agent.pid, SIGKILL), 0);
      ASSERT_EQ(waitpid(agent.pid, &status, 0), agent.pid);
      ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
      // Its workers die with it (parent-death signal); start the next agent once they are gone.
      for (const auto& [rank, pid] : workers)
        ASSERT_TRUE(Eventually([pid = pid] { return !ProcessExists(pid); }, 20))
            << "worker " << pid << " outlived its agent";
      // Every other time as if the node had rebooted: the host-memory tier is gone, the next
      // gang resumes from disk.
      const bool reboot = uniform(0, 1) == 1;
      if (reboot) {
        reboots_with_disk += access((ckpt_dir + "/LATEST").c_str(), F_OK) == 0;
        auto removed = ckpt::RemoveHostSegments(cleanup.prefix);
        ASSERT_TRUE(removed.ok()) << removed.status().ToString();
        ++reboots;
      }
      when += ": the agent (pid " + std::to_string(agent.pid) + ")" + (reboot ? ", and its host-memory segments" : "");
      agent = start_agent();
      ++agent_kills;
    } else {
      if (workers.empty()) continue;  // between gangs: try again
      auto it = workers.begin();
      std::advance(it, uniform(0, static_cast<int>(workers.size()) - 1));
      if (kill(it->second, SIGKILL) != 0) continue;  // it just died: try again
      when += ": worker rank " + std::to_string(it->first) + " (pid " + std::to_string(it->second) + ")";
    }
    reached = std::max(reached, LastStep(metrics));
    ++kills;
    write_kills += at_checkpoint;
    startup_kills += at_startup;
    std::printf("kill %d at step %lld, %s\n", kills, static_cast<long long>(reached), when.c_str());
    std::fflush(stdout);
  }
  std::printf("%d kills (%d of the agent, %d of them with its host memory; %d at a checkpoint's start or commit, "
              "%d while a gang started) in %.1f s\n",
              kills, agent_kills, reboots, write_kills, startup_kills, Since(chaos_start));

  Result last = WaitProcess(agent, kFinishS);
  ASSERT_FALSE(last.timed_out) << "the run did not finish within " << kFinishS << " s of the last kill\n" << last.err;
  ASSERT_EQ(last.exit_code(), 0) << last.err;
  cleanup.agent = -1;

  // Where the gangs resumed from (rank 0 prints it).
  int from_host = 0, from_disk = 0;
  for (int a = 0; a < agents; ++a) {
    std::istringstream out(ReadBytes(dir.File("agent" + std::to_string(a) + ".out")));
    for (std::string line; std::getline(out, line);) {
      from_host += Contains(line, "] resumed from host memory step ");
      from_disk += Contains(line, "] resumed from disk step ");
    }
  }
  std::printf("resumed %d times from host memory, %d times from disk (%d agents, %d kills)\n", from_host, from_disk,
              agents, kills);
  RecordProperty("resumed_from_host_memory", from_host);
  RecordProperty("resumed_from_disk", from_disk);
  EXPECT_GT(from_host + from_disk, kills / 2) << "most gangs must resume from a checkpoint";
  EXPECT_GT(from_host, 0) << "a killed worker's gang resumes from host memory";
  if (reboots_with_disk > 0) {
    EXPECT_GT(from_disk, 0) << "without host memory the gang resumes from disk";
  }

  // The same training as the uninterrupted run, bit for bit.
  const std::string ref_weights = ReadBytes(dir.File("ref/final/model.safetensors"));
  ASSERT_FALSE(ref_weights.empty());
  EXPECT_TRUE(ReadBytes(dir.File("chaos/final/model.safetensors")) == ref_weights)
      << "final weights differ from the uninterrupted run's";
  Records want = ReadRecords(dir.File("ref/metrics.jsonl")), got = ReadRecords(metrics);
  ASSERT_EQ(want.size(), static_cast<size_t>(kSteps));
  ASSERT_EQ(got.size(), static_cast<size_t>(kSteps)) << "every step must be in the final metrics";
  int replayed = 0;
  for (const auto& [step, records] : want) {
    ASSERT_EQ(records.size(), 1u) << "step " << step << " of the uninterrupted run";
    const auto& g = got[step];
    ASSERT_FALSE(g.empty()) << "step " << step;
    EXPECT_EQ(g.back(), records[0]) << "step " << step << ": (loss, grad norm) of its last record";
    for (const auto& r : g) EXPECT_EQ(r, records[0]) << "step " << step << ": a record of a replayed step";
    replayed += static_cast<int>(g.size()) - 1;
  }
  std::printf("%d step records were written again after a resume\n", replayed);

  // Nothing left running; the user-given prefix's segments were kept, and go now.
  for (pid_t pid : seen) {
    // (A pid that runs again may have been reused: only one running this run's config counts.)
    const bool ours = Contains(ReadBytes("/proc/" + std::to_string(pid) + "/cmdline"), chaos_cfg);
    EXPECT_FALSE(ProcessExists(pid) && ours) << "worker pid " << pid << " outlived the run";
  }
  auto removed = ckpt::RemoveHostSegments(cleanup.prefix);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(removed->size(), 2u) << "both ranks' segments outlive the agents";
  cleanup.prefix.clear();
}

}  // namespace
}  // namespace zt::launch
