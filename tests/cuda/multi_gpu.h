// Multi-GPU test support: one process per GPU. A test spawns `world` children that re-execute
// this test binary on the same test (--gtest_filter) with ZTEST_RANK / ZTEST_WORLD / ZTEST_DIR
// set; in a child the test body finds its rank (ThisRank) and runs the rank's part, checking with
// gtest as usual, then leaves with _exit (status 0 when nothing failed). Re-executing (not a bare
// fork) gives every child a fresh CUDA state whatever the parent did before (CUDA does not survive
// fork()). Invariant: every child is reaped: one still running at the limit is SIGKILLed.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/temp_dir.h"

#ifdef ZT_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

extern char** environ;

namespace zt::testing {

struct RankInfo {
  int rank = 0;
  int world = 1;
  std::string dir;  // shared by the parent and every child
};

// In a child spawned by SpawnRanks: its rank; in the parent: nullopt.
inline std::optional<RankInfo> ThisRank() {
  const char* r = std::getenv("ZTEST_RANK");
  const char* w = std::getenv("ZTEST_WORLD");
  const char* d = std::getenv("ZTEST_DIR");
  if (r == nullptr || w == nullptr || d == nullptr) return std::nullopt;
  return RankInfo{std::atoi(r), std::atoi(w), d};
}

// Runs `body` as this child's rank and leaves the process: status 0 when body returned and no
// gtest assertion failed.
#define ZT_RUN_AS_RANK(body)                                                         \
  do {                                                                               \
    if (auto zt_rank_ = ::zt::testing::ThisRank()) {                                 \
      (body)(*zt_rank_);                                                             \
      bool zt_failed_ = ::testing::Test::HasFailure();                               \
      std::fprintf(stderr, "[rank %d] %s\n", zt_rank_->rank, zt_failed_ ? "FAILED" : "ok"); \
      std::fflush(stdout);                                                           \
      std::fflush(stderr);                                                           \
      _exit(zt_failed_ ? 1 : 0);                                                     \
    }                                                                                \
  } while (0)

// CUDA devices visible (0 without CUDA built or without a GPU).
inline int GpuCount() {
#ifdef ZT_WITH_CUDA
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
#else
  return 0;
#endif
}

#define ZT_SKIP_WITH_FEWER_GPUS(n)                                                                  \
  do {                                                                                              \
    int zt_gpus_ = ::zt::testing::GpuCount();                                                       \
    if (zt_gpus_ < (n)) GTEST_SKIP() << "needs " << (n) << " GPUs, this machine has " << zt_gpus_; \
  } while (0)

// A fresh directory under the test temp dir, removed with its contents when this goes out of scope.
// Scratch directories: the shared helper (support/temp_dir.h); a tag such as "zt_gpu_zero_"
// names them.
using zt::testing::TempDir;

// Spawns `world` children running the current test as ranks 0..world-1 (extra: more environment
// variables, "NAME=value"); waits for them, SIGKILLing any still running after `limit`. Returns
// each child's wait status.
inline std::vector<int> SpawnRanks(int world, const std::string& dir, std::chrono::milliseconds limit,
                                   const std::vector<std::string>& extra = {}) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string filter = std::string("--gtest_filter=") + info->test_suite_name() + "." + info->name();
  std::vector<std::vector<std::string>> envs(world);
  for (int r = 0; r < world; ++r) {
    for (char** e = environ; *e != nullptr; ++e) {
      std::string kv = *e;
      if (kv.rfind("ZTEST_", 0) == 0 || kv.rfind("NCCL_NVLS_ENABLE=", 0) == 0) continue;
      envs[r].push_back(kv);
    }
    envs[r].push_back("ZTEST_RANK=" + std::to_string(r));
    envs[r].push_back("ZTEST_WORLD=" + std::to_string(world));
    envs[r].push_back("ZTEST_DIR=" + dir);
    envs[r].push_back("NCCL_NVLS_ENABLE=0");  // NVLink multicast stays off (docs/comm.md)
    for (const std::string& kv : extra) envs[r].push_back(kv);
  }
  std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) {
    // Everything execve needs is built before fork (only async-signal-safe calls after it).
    std::vector<char*> argv = {exe.data(), const_cast<char*>(filter.c_str()), const_cast<char*>("--gtest_brief=1"),
                               nullptr};
    std::vector<char*> envp;
    for (std::string& kv : envs[r]) envp.push_back(kv.data());
    envp.push_back(nullptr);
    std::fflush(stdout);
    std::fflush(stderr);
    pid_t p = fork();
    if (p == 0) {
      execve(exe.c_str(), argv.data(), envp.data());
      _exit(127);
    }
    if (p < 0) ADD_FAILURE() << "fork for rank " << r << " failed";
    pids.push_back(p);
  }
  std::vector<int> status(world, -1);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int left = world;
  for (int r = 0; r < world; ++r) {
    if (pids[r] < 0) {
      status[r] = 255 << 8;  // as if it exited with status 255
      --left;
    }
  }
  bool killed = false;
  while (left > 0) {
    for (int r = 0; r < world; ++r) {
      if (status[r] != -1 || pids[r] <= 0) continue;
      int st = 0;
      if (waitpid(pids[r], &st, WNOHANG) == pids[r]) {
        status[r] = st;
        --left;
      }
    }
    if (left > 0 && !killed && std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "ranks still running after " << limit.count() << " ms were killed";
      for (int r = 0; r < world; ++r)
        if (status[r] == -1 && pids[r] > 0) kill(pids[r], SIGKILL);
      killed = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status;
}

// A gtest failure naming every rank that did not exit with status 0 (skipping `except`).
inline void ExpectRanksSucceeded(const std::vector<int>& status, int except = -1) {
  for (size_t r = 0; r < status.size(); ++r) {
    if (static_cast<int>(r) == except) continue;
    int st = status[r];
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
        << "rank " << r << (WIFEXITED(st) ? " exited with status " + std::to_string(WEXITSTATUS(st))
                                          : " was killed by signal " + std::to_string(WTERMSIG(st)))
        << " (its output above says why)";
  }
}

}  // namespace zt::testing
