// FileStore: a Store in a directory, for processes that share a file system but no network path
// to one server (e.g. a shared scratch directory on a cluster). One file per key; see
// docs/comm.md for the layout.
// Invariants: a reader sees a key's whole value or none of it (values are written to a unique
// temporary name and renamed into place); Set, Add and Delete are serialised across processes and
// hosts by flock() on "<dir>/lock", so Add is atomic; waits poll and return within their timeout.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "comm/store.h"
#include "core/settings.h"

namespace zt::comm {

class FileStore final : public Store {
 public:
  // The directory is created (with parents) on first use; errors name it.
  explicit FileStore(std::string dir, std::chrono::milliseconds timeout = settings::CommTimeout());

  Status Set(const std::string& key, const std::string& value) override;
  StatusOr<std::string> Get(const std::string& key) override;
  StatusOr<int64_t> Add(const std::string& key, int64_t delta) override;
  Status Wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) override;
  StatusOr<bool> Delete(const std::string& key) override;
  using Store::Wait;

  const std::string& dir() const { return dir_; }

 private:
  Status Ready();
  // The file holding `key`; with `make_dirs`, creates the directories a long key needs.
  StatusOr<std::string> PathOf(const std::string& key, bool make_dirs);
  Status WriteValue(const std::string& path, const std::string& value, const std::string& key);

  std::string dir_;
  std::string tmp_tag_;  // unique to this FileStore: "<pid>.<random>"
  std::mutex mu_;  // guards ready_ and tmp_counter_
  bool ready_ = false;
  uint64_t tmp_counter_ = 0;
};

}  // namespace zt::comm
