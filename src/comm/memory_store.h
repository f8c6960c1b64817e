// MemoryStore: a Store inside one process (threads rendezvous through it). For tests and for
// single-process jobs; the TCP server keeps its table in one too.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>

#include "comm/store.h"

namespace zt::comm {

class MemoryStore final : public Store {
 public:
  Status Set(const std::string& key, const std::string& value) override;
  StatusOr<std::string> Get(const std::string& key) override;
  StatusOr<int64_t> Add(const std::string& key, int64_t delta) override;
  Status Wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) override;
  StatusOr<bool> Delete(const std::string& key) override;
  using Store::Wait;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::string> data_;
};

// "a, b" (at most `max` keys, then "and N more"), for timeout messages.
std::string JoinKeys(const std::vector<std::string>& keys, size_t max = 8);

}  // namespace zt::comm
