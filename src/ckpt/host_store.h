// HostStore: the host-memory checkpoint tier. One POSIX shared-memory segment per rank (mode 0600,
// named "<ZT_SHM_PREFIX>-r<rank>") holds the rank's latest RankSnapshot, double-buffered: a header
// and two slots. Put writes the slot that does not hold the newest committed snapshot and then
// publishes it (its header fields, then its commit sequence number, with release ordering). The
// segment outlives the worker; `ztrain launch` unlinks the job's segments when the job ends.
// Layout and protocol: docs/checkpoint-tiers.md.
// Invariants: a crash (or SIGKILL) at any point of Put leaves the other slot's snapshot intact and
// readable; List/Get never return a slot whose checksum (xxh64 over its header fields, section
// table and bytes) does not verify, nor one that changed while it was read. One writer per segment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ckpt/snapshot.h"
#include "core/status.h"

namespace zt::ckpt {

// A verified, committed slot of a segment.
struct HostSlotInfo {
  int slot = 0;        // 0 or 1
  uint64_t seq = 0;    // commit sequence number: higher is newer
  int64_t step = 0;
  int rank = 0;
  int world_size = 1;
  uint64_t bytes = 0;  // RankSnapshot::bytes.size()
};

enum class HostSnapshotAge { kNewest, kPrevious };

// For tests and fault injection: observe or cut short the copy of a Put.
struct PutHooks {
  // Called after each copied chunk with the snapshot bytes copied so far and the total.
  std::function<void(size_t copied, size_t total)> on_progress;
  // Stop after copying this many snapshot bytes and return without publishing (what a crash in
  // the middle of Put leaves behind).
  std::optional<size_t> abandon_after;
};

class HostStore {
 public:
  // "<prefix>-r<rank>". The prefix is a POSIX shm name: "/" then 1..200 of [A-Za-z0-9._-].
  static Status CheckPrefix(const std::string& prefix);
  static std::string SegmentName(const std::string& prefix, int rank);

  // Opens the rank's segment, creating it (empty, 0600) when `create` and it does not exist.
  // Refuses a segment owned by another user or open to others, and one whose header is not a
  // host store's (DataLoss naming it: remove it with `rm /dev/shm/<name>`).
  static StatusOr<std::unique_ptr<HostStore>> Open(const std::string& prefix, int rank, bool create = true);

  ~HostStore();
  HostStore(const HostStore&) = delete;
  HostStore& operator=(const HostStore&) = delete;

  // Copies the snapshot into the free slot (growing the segment when it is too small: each slot
  // region is sized for the snapshot, so a steady state holds two snapshots) and publishes it.
  Status Put(const RankSnapshot& snapshot, const PutHooks& hooks = {});

  // Verified committed slots, newest first (0, 1 or 2). Slots skipped (torn, failing their
  // checksum, inconsistent) are described in `problems` when given.
  std::vector<HostSlotInfo> List(std::vector<std::string>* problems = nullptr) const;
  // A copy of the newest (or the previous) verified snapshot; NotFound when there is none.
  StatusOr<RankSnapshot> Get(HostSnapshotAge which = HostSnapshotAge::kNewest) const;
  // A copy of one slot's snapshot, verified on the copy; DataLoss naming the slot otherwise.
  StatusOr<RankSnapshot> ReadSlot(int slot) const;

  const std::string& name() const { return name_; }
  int rank() const { return rank_; }
  uint64_t segment_bytes() const { return map_bytes_; }

 private:
  HostStore(std::string name, int rank, int fd) : name_(std::move(name)), rank_(rank), fd_(fd) {}
  Status Map(size_t bytes) const;
  Status Refresh() const;  // remaps when another process grew the segment
  Status Grow(size_t bytes);
  int ChooseTarget();

  std::string name_;
  int rank_ = 0;
  int fd_ = -1;
  mutable char* base_ = nullptr;
  mutable size_t map_bytes_ = 0;
  bool writer_ready_ = false;  // the first Put checks which slot holds the newest verified snapshot
  int last_committed_ = -1;    // the slot this process last published (-1: none verified)
};

// The host store of this worker: Open(ZT_SHM_PREFIX, rank), or nullptr when ZT_SHM_PREFIX is not
// set (the worker was not started by `ztrain launch`: no host-memory tier).
StatusOr<std::unique_ptr<HostStore>> OpenJobHostStore(int rank);

// The prefix an agent gives its job when ZT_SHM_PREFIX is not set: "/zt-<agent pid>-<id>", with
// `id` a fresh random [0-9a-f]+ string.
std::string DefaultShmPrefix(long agent_pid, const std::string& id);

// Unlinks every segment "<prefix>-r<N>" (the job's segments on this node); returns their names.
StatusOr<std::vector<std::string>> RemoveHostSegments(const std::string& prefix);

// Unlinks this user's segments left by agents that no longer run: names "/zt-<pid>-<id>-r<N>"
// (the agent's default prefix) whose <pid> is not a live process; returns their names.
StatusOr<std::vector<std::string>> RemoveOrphanedHostSegments();

}  // namespace zt::ckpt
