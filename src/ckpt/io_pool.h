// IoPool: a fixed set of threads that run I/O tasks (shard chunks, checksums) in FIFO order, so
// older checkpoints' chunks go to disk before newer ones'. TaskGroup waits for a set of tasks and
// keeps the first error.
// Invariant: the destructor runs every task already queued, then joins the threads.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/status.h"

namespace zt::ckpt {

class IoPool {
 public:
  explicit IoPool(int threads);
  ~IoPool();
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  void Run(std::function<void()> task);
  int threads() const { return static_cast<int>(threads_.size()); }

 private:
  void Loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// Counts tasks in flight; Wait() returns the first failure among them (or OK) once all finished.
class TaskGroup {
 public:
  void Add(int n = 1);
  void Done(const Status& s);
  Status Wait();
  bool failed();  // some task has failed already (later tasks may skip their work)
  Status TakeError();  // the first failure so far (without waiting), which is then forgotten

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int pending_ = 0;
  Status first_error_;
};

}  // namespace zt::ckpt
