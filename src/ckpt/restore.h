// Choosing what a (re)started job resumes from: the host-memory tier (HostStore, every rank's own
// segment) or the persistent tier on disk, or nothing. Every rank calls ChooseRestore once per job
// generation; they meet through the job's Store:
//   1. each rank publishes the steps it holds verified in host memory (both slots);
//   2. rank 0 takes the newest step that EVERY rank holds (H), walks the committed disk
//      checkpoints newest first, verifying each newer than H (a corrupt or torn one is skipped
//      with a warning naming it), and publishes the decision:
//        - a verified disk checkpoint newer than H            -> disk
//        - else H exists (host memory at least as new as disk) -> host memory
//        - else the newest verified disk checkpoint           -> disk
//        - else                                                -> none (start fresh)
//   3. every rank reads the decision; for host memory it finds its own slot holding that step.
// Invariant: all ranks return the same source and step; a host-memory choice names a slot that
// this rank verified; a disk choice names a checkpoint that verified on rank 0.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ckpt/host_store.h"
#include "comm/store.h"
#include "core/status.h"

namespace zt::ckpt {

// One committed checkpoint on disk.
struct DiskCheckpointRef {
  int64_t step = 0;
  std::string path;  // its directory
};

// The persistent tier as ChooseRestore needs it. DiskCatalogFor(dir) is the real one (over the
// checkpoint directory layout of ckpt/format.h); tests pass fakes.
class DiskCatalog {
 public:
  virtual ~DiskCatalog() = default;
  // Committed checkpoints, newest first: what LATEST names, then the older ones still on disk.
  virtual StatusOr<std::vector<DiskCheckpointRef>> ListCommitted() = 0;
  // OK when the checkpoint is complete and every checksum matches; else why not (naming it).
  virtual Status Verify(const DiskCheckpointRef& checkpoint) = 0;
};

// The catalog of a checkpoint directory (the run's checkpoint root); nullptr for an empty `dir`.
std::unique_ptr<DiskCatalog> DiskCatalogFor(const std::string& dir);

enum class RestoreSource { kNone, kHostMemory, kDisk };
const char* RestoreSourceName(RestoreSource s);  // "none", "host memory", "disk"

struct RestoreChoice {
  RestoreSource source = RestoreSource::kNone;
  int64_t step = 0;                   // the step to resume after (0 with kNone)
  int host_slot = -1;                 // kHostMemory: this rank's slot holding `step`
  std::string disk_path;              // kDisk: the checkpoint directory
  std::vector<std::string> warnings;  // rank 0: checkpoints skipped, and why

  std::string Describe() const;  // "host memory step 12 (slot 1)", "disk step 10 (<path>)", "nothing"
};

// `held`: this rank's verified host-memory snapshots (HostStore::List()); only those of this rank
// and world size count. `disk` may be null (no persistent tier). Call once per job generation:
// the store keys are "zt/restore/*" (give a PrefixStore to call it more than once).
StatusOr<RestoreChoice> ChooseRestore(const std::vector<HostSlotInfo>& held, DiskCatalog* disk, comm::Store& store,
                                      int rank, int world_size);
// The same with this rank's host store (null: none).
StatusOr<RestoreChoice> ChooseRestore(const HostStore* host, DiskCatalog* disk, comm::Store& store, int rank,
                                      int world_size);

}  // namespace zt::ckpt
