// DiskCatalogFor: the persistent tier as ChooseRestore sees it (restore.h). Committed checkpoints
// are what LATEST names and the older ones with a manifest; when LATEST itself is unreadable
// (garbled: it exists but names no checkpoint), every checkpoint with a parseable manifest
// is a candidate, newest first, with a warning: a manifest is written only after every shard is
// durable, and Verify re-checks every checksum before anything is used.
// Invariant: nothing newer than a readable LATEST is ever offered (it was never committed).
#include <algorithm>

#include "ckpt/reader.h"
#include "ckpt/restore.h"
#include "core/logging.h"

namespace zt::ckpt {
namespace {

class DirectoryCatalog final : public DiskCatalog {
 public:
  explicit DirectoryCatalog(std::string dir) : dir_(std::move(dir)) {}

  StatusOr<std::vector<DiskCheckpointRef>> ListCommitted() override {
    std::vector<DiskCheckpointRef> out;
    auto list = ListCheckpoints(dir_);
    if (!list.ok()) {
      if (list.status().code() == StatusCode::kNotFound) return out;  // no directory yet: nothing saved
      return list.status();
    }
    // Without any LATEST nothing was ever committed (a crash before the first commit): the
    // writer's open collects those directories. A LATEST that exists but cannot be read is damage
    // to the commit point itself: then every whole checkpoint is a candidate.
    const bool latest_garbled = !list->latest_problem.empty();
    if (latest_garbled) {
      ZT_LOG(WARNING) << "checkpoint directory " << dir_ << ": LATEST is unusable (" << list->latest_problem
                      << "); considering every checkpoint with a manifest, each verified before use";
    }
    for (auto it = list->entries.rbegin(); it != list->entries.rend(); ++it) {
      bool candidate = it->state == CheckpointState::kLatest || it->state == CheckpointState::kCommitted ||
                       (latest_garbled && it->state == CheckpointState::kUncommitted);
      if (!candidate) continue;
      out.push_back({it->step, dir_ + "/" + it->name});
    }
    return out;
  }

  Status Verify(const DiskCheckpointRef& checkpoint) override {
    std::string name = checkpoint.path.substr(checkpoint.path.find_last_of('/') + 1);
    auto r = ckpt::Verify(dir_, name);
    return r.ok() ? OkStatus() : r.status();
  }

 private:
  std::string dir_;
};

}  // namespace

std::unique_ptr<DiskCatalog> DiskCatalogFor(const std::string& dir) {
  if (dir.empty()) return nullptr;
  return std::make_unique<DirectoryCatalog>(dir);
}

}  // namespace zt::ckpt
