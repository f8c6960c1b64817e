// A tiny worker for the launch tests, started by `ztrain launch --program` (or by a test playing
// mpirun). It reads its place in the job with launch::DetectWorkerEnv and does one thing:
//   env DIR            write DIR/env.<rank> (what it detected) and exit 0
//   rendezvous DIR     connect to the job's store, count in, wait for everyone, swap pids, write
//                      DIR/rendezvous.<rank>, Finish(), exit 0
//   exit R CODE DIR [ignore-term]  rank R exits with CODE once every rank wrote DIR/pid.<rank>;
//                      the others sleep (optionally ignoring SIGTERM)
//   kill R DIR [ignore-term]       the same, but rank R sends itself SIGKILL
//   sleep DIR [ignore-term]  write DIR/pid.<rank> and sleep (optionally ignoring SIGTERM)
//   print              write lines to stdout and stderr, the last without a newline, exit 0
//   restart R CODE FAILS DIR [shm] [ignore-term]
//                      for the gang restarts of `--max-restarts`: with k = ZT_RESTART_COUNT, write
//                      DIR/seen.<k>.<rank> ("k prefix pid found-step store token", prefix "-" without
//                      ZT_SHM_PREFIX) and DIR/pid.<rank>; with `shm`, first read the newest snapshot
//                      of this rank's host-memory segment (found-step, -1 when none; "no-tier"
//                      without ZT_SHM_PREFIX) and put one of step 100 * (k + 1) + rank. On
//                      attempts k < FAILS (every attempt when FAILS < 0) rank R exits with CODE once
//                      every rank wrote seen.<k>.* and the others sleep (R = -1: all sleep);
//                      on later attempts every rank exits 0.
//   grandchild DIR     fork a child that writes DIR/grandchild.<rank> and sleeps; write
//                      DIR/pid.<rank> and sleep (both in the worker's process group)
// Anything unexpected prints "launch_test_worker: ..." on stderr and exits 99.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "ckpt/host_store.h"
#include "launch/worker_env.h"

namespace {

using zt::Status;
using zt::launch::WorkerEnv;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "launch_test_worker: %s\n", what.c_str());
  std::exit(99);
}

void WriteFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << text;
    if (!f) Die("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);  // readers never see a half-written file
}

void SleepSeconds(int s) { std::this_thread::sleep_for(std::chrono::seconds(s)); }

void WritePid(const WorkerEnv& env, const std::string& dir) {
  WriteFile(dir + "/pid." + std::to_string(env.rank), std::to_string(getpid()));
}

// Waits (up to 20 s) until every rank has written its pid file.
void WaitForAllPids(const WorkerEnv& env, const std::string& dir) {
  for (int i = 0; i < 2000; ++i) {
    bool all = true;
    for (int r = 0; r < env.world_size; ++r) all = all && std::filesystem::exists(dir + "/pid." + std::to_string(r));
    if (all) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Die("the other ranks did not start");
}

int Rendezvous(const WorkerEnv& env, const std::string& dir) {
  auto job = zt::launch::ConnectJob(env);
  if (!job.ok()) Die("ConnectJob: " + job.status().ToString());
  zt::comm::Store& store = *job->store;
  auto n = store.Add("test/count", 1);
  if (!n.ok()) Die("Add: " + n.status().ToString());
  if (*n == env.world_size && !store.Set("test/all", "1").ok()) Die("Set test/all");
  if (!store.Set("test/pid/" + std::to_string(env.rank), std::to_string(getpid())).ok()) Die("Set pid");
  if (Status s = store.Wait({"test/all"}); !s.ok()) Die("Wait: " + s.ToString());
  std::string pids;
  for (int r = 0; r < env.world_size; ++r) {
    auto v = store.Get("test/pid/" + std::to_string(r));
    if (!v.ok()) Die("Get: " + v.status().ToString());
    pids += (r ? " " : "") + *v;
  }
  auto count = store.Add("test/count", 0);
  if (!count.ok() || *count != env.world_size) Die("counter is not world_size after the rendezvous");
  WriteFile(dir + "/rendezvous." + std::to_string(env.rank),
            std::to_string(env.world_size) + " " + std::to_string(*count) + " " + pids + "\n");
  if (Status s = job->Finish(); !s.ok()) Die("Finish: " + s.ToString());
  return 0;
}

// The newest snapshot's step in this rank's host-memory segment (-1: none), then puts one of
// step `next_step`. "no-tier" when the worker has no ZT_SHM_PREFIX.
std::string CycleHostStore(int rank, int world_size, int64_t next_step) {
  auto store = zt::ckpt::OpenJobHostStore(rank);
  if (!store.ok()) Die("OpenJobHostStore: " + store.status().ToString());
  if (*store == nullptr) return "no-tier";
  auto found = (*store)->Get();
  if (!found.ok() && found.status().code() != zt::StatusCode::kNotFound) Die("Get: " + found.status().ToString());
  zt::ckpt::RankSnapshot snap;
  snap.step = next_step;
  snap.rank = rank;
  snap.world_size = world_size;
  char* p = snap.AddSection("master/test", zt::DType::kF32, 4);
  for (int i = 0; i < 16; ++i) p[i] = static_cast<char>(i);
  if (Status s = (*store)->Put(snap); !s.ok()) Die("Put: " + s.ToString());
  return found.ok() ? std::to_string(found->step) : "-1";
}

int Restart(const WorkerEnv& env, int victim, int code, int fails, const std::string& dir, bool shm, bool ignore_term) {
  if (ignore_term) signal(SIGTERM, SIG_IGN);
  const char* k_env = std::getenv("ZT_RESTART_COUNT");
  const char* prefix = std::getenv("ZT_SHM_PREFIX");
  const int k = k_env ? std::atoi(k_env) : -1;
  if (k != env.restart_count) Die("DetectWorkerEnv's restart_count differs from ZT_RESTART_COUNT");
  const std::string found = shm ? CycleHostStore(env.rank, env.world_size, 100 * (k + 1) + env.rank) : "-";
  const std::string seen = dir + "/seen." + std::to_string(k) + ".";
  const std::string store = env.store ? zt::comm::FormatHostPort(env.store->host, env.store->port) : "-";
  WritePid(env, dir);  // first: a test that saw seen.<k>.<rank> reads pid.<rank>
  WriteFile(seen + std::to_string(env.rank), std::to_string(k) + " " + (prefix && *prefix ? prefix : "-") + " " +
                                                 std::to_string(getpid()) + " " + found + " " + store + " " +
                                                 env.token + "\n");
  if (fails >= 0 && k >= fails) return 0;
  if (env.rank != victim) {
    SleepSeconds(120);
    return 0;
  }
  for (int i = 0; i < 2000; ++i) {
    bool all = true;
    for (int r = 0; r < env.world_size; ++r) all = all && std::filesystem::exists(seen + std::to_string(r));
    if (all) return code;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Die("the other ranks of attempt " + std::to_string(k) + " did not start");
}

int Grandchild(const WorkerEnv& env, const std::string& dir) {
  const pid_t child = fork();
  if (child < 0) Die("fork failed");
  if (child == 0) {
    WriteFile(dir + "/grandchild." + std::to_string(env.rank), std::to_string(getpid()));
    SleepSeconds(120);
    _exit(0);
  }
  WritePid(env, dir);
  SleepSeconds(120);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto env = zt::launch::DetectWorkerEnv();
  if (!env.ok()) Die("DetectWorkerEnv: " + env.status().ToString());
  const std::string mode = argc > 1 ? argv[1] : "";
  auto arg = [&](int i) -> std::string {
    if (i >= argc) Die("mode " + mode + " needs more arguments");
    return argv[i];
  };

  if (mode == "env") {
    const WorkerEnv& e = *env;
    std::string store = e.store ? zt::comm::FormatHostPort(e.store->host, e.store->port) : "-";
    WriteFile(arg(2) + "/env." + std::to_string(e.rank),
              std::to_string(e.rank) + " " + std::to_string(e.world_size) + " " + std::to_string(e.local_rank) + " " +
                  std::to_string(e.local_world_size) + " " + e.master_addr + " " + std::to_string(e.master_port) + " " +
                  store + " " + e.token + " " + zt::launch::LauncherName(e.launcher) + "\n");
    return 0;
  }
  if (mode == "rendezvous") return Rendezvous(*env, arg(2));
  if (mode == "exit" || mode == "kill") {
    const int victim = std::atoi(arg(2).c_str());
    const int dir_arg = mode == "exit" ? 4 : 3;
    const std::string dir = arg(dir_arg);
    if (argc > dir_arg + 1 && std::string(argv[dir_arg + 1]) == "ignore-term") signal(SIGTERM, SIG_IGN);
    WritePid(*env, dir);
    if (env->rank != victim) {
      SleepSeconds(120);
      return 0;
    }
    WaitForAllPids(*env, dir);
    if (mode == "kill") raise(SIGKILL);
    return std::atoi(arg(3).c_str());
  }
  if (mode == "sleep") {
    if (argc > 3 && std::string(argv[3]) == "ignore-term") signal(SIGTERM, SIG_IGN);
    WritePid(*env, arg(2));
    SleepSeconds(120);
    return 0;
  }
  if (mode == "restart") {
    bool shm = false, ignore_term = false;
    for (int i = 6; i < argc; ++i) {
      const std::string opt = argv[i];
      if (opt == "shm") {
        shm = true;
      } else if (opt == "ignore-term") {
        ignore_term = true;
      } else {
        Die("restart: unknown option " + opt);
      }
    }
    return Restart(*env, std::atoi(arg(2).c_str()), std::atoi(arg(3).c_str()), std::atoi(arg(4).c_str()), arg(5), shm,
                   ignore_term);
  }
  if (mode == "grandchild") return Grandchild(*env, arg(2));
  if (mode == "print") {
    std::printf("hello from rank %d on stdout\nsecond line\n", env->rank);
    std::fflush(stdout);
    std::fprintf(stderr, "rank %d on stderr, no newline", env->rank);
    return 0;
  }
  Die("unknown mode '" + mode + "'");
}
