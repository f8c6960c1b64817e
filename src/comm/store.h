// Store: the key-value rendezvous every multi-process part of ztrain meets through (worker
// bootstrap, communicator setup, checkpoint coordination). Implementations: TCP (a server hosted
// by the launcher agent or rank 0, clients that must present the job's token), files on a shared
// file system, and a prefix view for sub-groups.
// Invariant: every blocking call returns within the store's timeout (ZT_COMM_TIMEOUT_S unless
// set): a DeadlineExceeded error naming the keys still missing, never a hang; Add is atomic across
// all clients.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace zt::comm {

class Store {
 public:
  virtual ~Store() = default;

  virtual Status Set(const std::string& key, const std::string& value) = 0;
  // Waits (up to timeout()) for the key to exist, then returns its value.
  virtual StatusOr<std::string> Get(const std::string& key) = 0;
  // Atomically adds delta to the integer stored at key (absent: 0) and returns the new value.
  virtual StatusOr<int64_t> Add(const std::string& key, int64_t delta) = 0;
  // Waits until every key exists, for at most `timeout`.
  virtual Status Wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) = 0;
  Status Wait(const std::vector<std::string>& keys) { return Wait(keys, timeout()); }
  // Returns whether the key existed.
  virtual StatusOr<bool> Delete(const std::string& key) = 0;

  std::chrono::milliseconds timeout() const { return timeout_; }
  void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }

 protected:
  std::chrono::milliseconds timeout_{300000};
};

}  // namespace zt::comm
