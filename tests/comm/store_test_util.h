// Helpers for the store tests: a temporary directory, a stopwatch, and a multi-process Add run
// (fork only; the children are forked before the caller starts any thread).
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "comm/store.h"

namespace zt::comm::testing {

// A fresh directory, removed with its contents at the end of the scope. On tmpfs (/dev/shm) when
// there is one: FileStore's semantics are the same there, and its Adds are ten times faster.
class TempDir {
 public:
  TempDir() {
    std::filesystem::path base = ::access("/dev/shm", W_OK) == 0 ? std::filesystem::path("/dev/shm")
                                                                   : std::filesystem::temp_directory_path();
    std::string tmpl = (base / "zt_store_test_XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class Stopwatch {
 public:
  int64_t ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Forks `procs` children. Each reads a line (the "address") from its pipe once the parent has run
// `setup` (which may start threads: the children exist already), opens a store with `open`, does
// `adds` x Add(key, 1) and sends every returned value back. Returns all returned values (sorted)
// and fails the test if a child failed.
inline std::vector<int64_t> RunAddersInChildren(
    int procs, int adds, const std::string& key, const std::function<std::string()>& setup,
    const std::function<std::unique_ptr<Store>(const std::string& address)>& open) {
  struct Child {
    pid_t pid;
    int go_w;
    int result_r;
  };
  std::vector<Child> children;
  for (int i = 0; i < procs; ++i) {
    int go[2], result[2];
    if (::pipe(go) != 0 || ::pipe(result) != 0) {
      ADD_FAILURE() << "pipe failed";
      return {};
    }
    pid_t pid = ::fork();
    if (pid == 0) {  // child: no gtest, no exit handlers
      ::close(go[1]);
      ::close(result[0]);
      std::string address;
      char c;
      while (::read(go[0], &c, 1) == 1 && c != '\n') address.push_back(c);
      std::unique_ptr<Store> store = open(address);
      if (!store) ::_exit(2);
      for (int k = 0; k < adds; ++k) {
        StatusOr<int64_t> v = store->Add(key, 1);
        if (!v.ok()) ::_exit(3);
        int64_t x = *v;
        if (::write(result[1], &x, sizeof(x)) != sizeof(x)) ::_exit(4);
      }
      store.reset();
      ::_exit(0);
    }
    ::close(go[0]);
    ::close(result[1]);
    children.push_back({pid, go[1], result[0]});
  }
  std::string address = setup() + "\n";
  for (const Child& ch : children) {
    EXPECT_EQ(::write(ch.go_w, address.data(), address.size()), static_cast<ssize_t>(address.size()));
    ::close(ch.go_w);
  }
  std::vector<int64_t> values;
  for (const Child& ch : children) {
    int64_t x;
    while (::read(ch.result_r, &x, sizeof(x)) == sizeof(x)) values.push_back(x);
    ::close(ch.result_r);
    int status = 0;
    ::waitpid(ch.pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child " << ch.pid << " status " << status;
  }
  std::sort(values.begin(), values.end());
  return values;
}

// 1, 2, ..., n.
inline std::vector<int64_t> OneTo(int64_t n) {
  std::vector<int64_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = i + 1;
  return v;
}

}  // namespace zt::comm::testing
