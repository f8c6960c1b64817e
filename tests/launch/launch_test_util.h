// Helpers for the launch tests: start a program (the built ztrain, the test worker) with a chosen
// environment and its output in files, wait for it with a bound, read the files the workers write,
// and find a free TCP port.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "data/temp_dir.h"
#include "launch/process.h"

extern char** environ;

namespace zt::launch::testing {

using zt::data::testing::ReadBytes;
using zt::data::testing::TempDir;

inline const std::string kZtrain = std::string(ZT_BINARY_DIR) + "/ztrain";
inline const std::string kWorker = ZT_LAUNCH_TEST_WORKER;

using EnvPairs = std::vector<std::pair<std::string, std::string>>;

// Launcher variables a test must not inherit from whatever runs it.
inline const std::set<std::string> kLauncherVars = {"ZT_SHM_PREFIX",
                                                    "ZT_RESTART_COUNT",
                                                    "RANK",
                                                    "WORLD_SIZE",
                                                    "LOCAL_RANK",
                                                    "LOCAL_WORLD_SIZE",
                                                    "MASTER_ADDR",
                                                    "MASTER_PORT",
                                                    "ZT_STORE",
                                                    "ZT_STORE_TOKEN",
                                                    "ZT_STORE_BIND",
                                                    "OMPI_COMM_WORLD_RANK",
                                                    "OMPI_COMM_WORLD_SIZE",
                                                    "OMPI_COMM_WORLD_LOCAL_RANK",
                                                    "OMPI_COMM_WORLD_LOCAL_SIZE",
                                                    "PMI_RANK",
                                                    "PMI_SIZE",
                                                    "MPI_LOCALRANKID",
                                                    "MPI_LOCALNRANKS",
                                                    "SLURM_PROCID",
                                                    "SLURM_NTASKS",
                                                    "SLURM_LOCALID",
                                                    "SLURM_NODEID",
                                                    "SLURM_STEP_NUM_TASKS",
                                                    "SLURM_STEP_TASKS_PER_NODE",
                                                    "SLURM_TASKS_PER_NODE",
                                                    "SLURM_NTASKS_PER_NODE"};

// This process's environment without launcher variables, plus `extra`.
inline std::vector<std::string> CleanEnv(const EnvPairs& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    if (!kLauncherVars.count(kv.substr(0, kv.find('=')))) env.push_back(kv);
  }
  for (const auto& [k, v] : extra) env.push_back(k + "=" + v);
  return env;
}

struct Proc {
  pid_t pid = -1;
  std::string out_path, err_path;
  std::chrono::steady_clock::time_point started;
};

struct Result {
  int status = -1;  // waitpid status
  bool timed_out = false;
  double seconds = 0;
  std::string out, err;
  int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
};

inline Proc StartProcess(const std::vector<std::string>& argv, const EnvPairs& extra_env, const TempDir& dir,
                         const std::string& name) {
  Proc p;
  p.out_path = dir.File(name + ".out");
  p.err_path = dir.File(name + ".err");
  int out = open(p.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err = open(p.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  SpawnRequest req;
  req.program = argv.at(0);
  req.argv = argv;
  req.env = CleanEnv(extra_env);
  req.stdout_fd = out;
  req.stderr_fd = err;
  sigemptyset(&req.signal_mask);
  p.started = std::chrono::steady_clock::now();
  auto pid = Spawn(req);
  close(out);
  close(err);
  EXPECT_TRUE(pid.ok()) << pid.status().ToString();
  p.pid = pid.ok() ? *pid : -1;
  return p;
}

// Waits up to timeout_s; past it the process group is killed and timed_out is set.
inline Result WaitProcess(const Proc& p, double timeout_s) {
  Result r;
  const auto deadline = p.started + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  while (p.pid > 0) {
    pid_t w = waitpid(p.pid, &r.status, WNOHANG);
    if (w == p.pid) break;
    if (w < 0) {
      ADD_FAILURE() << "waitpid: " << strerror(errno);
      break;
    }
    if (std::chrono::steady_clock::now() > deadline && !r.timed_out) {
      r.timed_out = true;
      killpg(p.pid, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - p.started).count();
  r.out = ReadBytes(p.out_path);
  r.err = ReadBytes(p.err_path);
  return r;
}

inline Result RunProcess(const std::vector<std::string>& argv, const EnvPairs& env, const TempDir& dir,
                         const std::string& name, double timeout_s = 60) {
  return WaitProcess(StartProcess(argv, env, dir, name), timeout_s);
}

// Whether a process with this pid is alive. A zombie (dead, not yet reaped: an orphan waiting for
// init) counts as gone.
inline bool ProcessExists(pid_t pid) {
  if (pid <= 0 || (kill(pid, 0) != 0 && errno != EPERM)) return false;
  std::string stat = ReadBytes("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');  // "pid (comm) S ..."
  return !(paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z');
}

// Polls for a file (the workers write theirs by rename, so it is complete when it exists).
inline bool WaitForFile(const std::string& path, double timeout_s) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  while (std::chrono::steady_clock::now() < deadline) {
    if (access(path.c_str(), F_OK) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

inline pid_t ReadPid(const std::string& path) {
  std::string s = ReadBytes(path);
  return s.empty() ? -1 : static_cast<pid_t>(std::stol(s));
}

// argv of `ztrain launch --program <test worker> <agent_args> -- <worker_args>`.
inline std::vector<std::string> Launch(std::vector<std::string> agent_args, const std::vector<std::string>& worker_args) {
  std::vector<std::string> argv = {kZtrain, "launch", "--program", kWorker};
  argv.insert(argv.end(), agent_args.begin(), agent_args.end());
  argv.push_back("--");
  argv.insert(argv.end(), worker_args.begin(), worker_args.end());
  return argv;
}

inline std::vector<std::string> Words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> w;
  for (std::string x; in >> x;) w.push_back(x);
  return w;
}

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The agent's stderr line for a failed worker, with the pid the worker itself recorded.
inline std::string FailureLine(const TempDir& dir, int rank, const std::string& how) {
  return "ztrain launch: worker rank " + std::to_string(rank) + " (pid " +
         std::to_string(ReadPid(dir.File("pid." + std::to_string(rank)))) + ") " + how;
}

inline void ExpectAllGone(const TempDir& dir, int world) {
  for (int rank = 0; rank < world; ++rank) {
    pid_t pid = ReadPid(dir.File("pid." + std::to_string(rank)));
    ASSERT_GT(pid, 0) << "rank " << rank << " never started";
    EXPECT_FALSE(ProcessExists(pid)) << "worker rank " << rank << " (pid " << pid << ") is still running";
  }
}

// Polls `done` every 10 ms for up to timeout_s; returns its last value.
template <typename Fn>
bool Eventually(Fn done, double timeout_s) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// A port that was free a moment ago (the kernel's next ephemeral one).
inline int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

}  // namespace zt::launch::testing
