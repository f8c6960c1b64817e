// IoPool threads and TaskGroup.
#include "ckpt/io_pool.h"

namespace zt::ckpt {

IoPool::IoPool(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

IoPool::~IoPool() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void IoPool::Run(std::function<void()> task) {
  if (threads_.empty()) {
    task();
    return;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void IoPool::Loop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stop_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stop_ and drained
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

void TaskGroup::Add(int n) {
  std::lock_guard<std::mutex> l(mu_);
  pending_ += n;
}

void TaskGroup::Done(const Status& s) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!s.ok() && first_error_.ok()) first_error_ = s;
    --pending_;
  }
  cv_.notify_all();
}

Status TaskGroup::Wait() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return pending_ == 0; });
  return first_error_;
}

Status TaskGroup::TakeError() {
  std::lock_guard<std::mutex> l(mu_);
  Status s = first_error_;
  first_error_ = OkStatus();
  return s;
}

bool TaskGroup::failed() {
  std::lock_guard<std::mutex> l(mu_);
  return !first_error_.ok();
}

}  // namespace zt::ckpt
