// Helpers for the Gloo communicator tests: run N ranks as threads (MemoryStore) or as forked
// processes (FileStore), seeded inputs whose magnitudes differ (so summation order shows in the
// bits), and the serial references the tests compare against. Invariant: the references are
// computed here, independently of src/comm, from the documented order (chunk c summed in f32 in
// ring order c+1, c+2, ..., c) and rounded once.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "comm/communicator.h"
#include "comm/gloo_communicator.h"
#include "comm/memory_store.h"
#include "core/dtype.h"

namespace zt::comm::testing {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

inline int64_t MsSince(Clock::time_point t0) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
}

// Runs fn(rank, comm) on `world` threads that each create a communicator on one MemoryStore.
inline void RunThreads(int world, milliseconds timeout, const std::function<void(int, Communicator&)>& fn) {
  MemoryStore store;
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      auto comm = CreateGlooCommunicator(store, r, world, timeout);
      ASSERT_TRUE(comm.ok()) << comm.status().ToString();
      fn(r, **comm);
    });
  }
  for (auto& t : threads) t.join();
}

// Forks `world` children running child(rank) (its return value is the exit status; it must not
// use gtest). Returns each child's wait status; children still alive after `limit` are killed.
inline std::vector<int> RunProcesses(int world, milliseconds limit, const std::function<int(int)>& child,
                                     const std::function<void(const std::vector<pid_t>&)>& parent = nullptr) {
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) {
    pid_t p = fork();
    if (p == 0) {
      int code = 99;
      try {
        code = child(r);
      } catch (...) {
        code = 98;
      }
      _exit(code);
    }
    pids.push_back(p);
  }
  if (parent) parent(pids);
  std::vector<int> status(world, -1);
  auto deadline = Clock::now() + limit;
  int left = world;
  while (left > 0) {
    for (int r = 0; r < world; ++r) {
      if (status[r] != -1) continue;
      int st = 0;
      if (waitpid(pids[r], &st, WNOHANG) == pids[r]) {
        status[r] = st;
        --left;
      }
    }
    if (left > 0 && Clock::now() > deadline) {
      for (int r = 0; r < world; ++r)
        if (status[r] == -1) kill(pids[r], SIGKILL);
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  return status;
}

// A fresh directory under the test temp dir, removed (with its contents) when this goes out of
// scope in the parent (forked children leave through _exit, which runs no destructors).
class ScopedTempDir {
 public:
  explicit ScopedTempDir(const std::string& tag) {
    std::string tmpl = ::testing::TempDir() + "zt_gloo_" + tag + "_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    char* d = mkdtemp(buf.data());
    EXPECT_NE(d, nullptr) << "mkdtemp " << tmpl;
    path_ = d ? d : "";
  }
  ~ScopedTempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline void WriteFile(const std::string& path, const std::string& s) {
  std::ofstream(path, std::ios::binary) << s;
}
inline std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Seeded f32 values in +-[2^-6, 2^6): mixed magnitudes, so a different summation order changes
// the low bits.
inline std::vector<float> Values(uint64_t seed, int rank, int64_t n) {
  std::mt19937_64 g(seed * 7919 + static_cast<uint64_t>(rank) * 104729 + 17);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> e(-6, 6);
  std::vector<float> v(n);
  for (auto& x : v) x = std::ldexp(u(g), e(g));
  return v;
}

template <typename T>
std::vector<T> Convert(const std::vector<float>& v) {
  std::vector<T> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = FromF32<T>(v[i]);
  return out;
}

// The reduction of element i of `total`, split in `world` chunks of `chunk`: f32 sum in ring
// order starting after the chunk's owner, divided by world for avg, rounded once to T.
template <typename T>
std::vector<T> RingReference(const std::vector<std::vector<T>>& inputs, int64_t chunk, bool avg) {
  const int world = static_cast<int>(inputs.size());
  const int64_t total = static_cast<int64_t>(inputs[0].size());
  std::vector<T> out(total);
  for (int64_t i = 0; i < total; ++i) {
    int c = static_cast<int>(i / chunk);
    float s = ToF32(inputs[(c + 1) % world][i]);
    for (int k = 2; k <= world; ++k) s = s + ToF32(inputs[(c + k) % world][i]);
    if (avg) s = s / static_cast<float>(world);
    out[i] = FromF32<T>(s);
  }
  return out;
}

template <typename T>
std::vector<uint16_t> Bits16(const std::vector<T>& v) {
  std::vector<uint16_t> b(v.size());
  std::memcpy(b.data(), v.data(), v.size() * 2);
  return b;
}
inline std::vector<uint32_t> Bits32(const std::vector<float>& v) {
  std::vector<uint32_t> b(v.size());
  std::memcpy(b.data(), v.data(), v.size() * 4);
  return b;
}

}  // namespace zt::comm::testing
