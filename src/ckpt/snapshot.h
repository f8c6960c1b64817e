// RankSnapshot: one rank's training state at an optimizer-step boundary, in host memory, as the
// checkpoint tiers store it. Sections are contiguous byte ranges with a name, a dtype and an
// element count; the manifest (manifest.h) says what they mean. The buffers come from a pool
// (SnapshotPool) so at most a fixed number exist at once; their bytes are 4096-aligned HostBytes
// from the pool's HostAllocator (page-locked on a GPU run, so device copies fill them
// asynchronously).
//
// Section names (written by the engine, runtime/checkpoint_state.h):
//   "<kind>/<unit>"  for kind in {master, exp_avg, exp_avg_sq}: this rank's slice
//                    [rank * shard, (rank + 1) * shard) of the unit's flat f32 buffer.
// Everything else a resume needs (steps, loss scale, sampler position, config) is in the manifest.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ckpt/host_bytes.h"
#include "core/dtype.h"
#include "core/status.h"

namespace zt::ckpt {

struct SnapshotSection {
  std::string name;
  DType dtype = DType::kF32;
  int64_t numel = 0;
  size_t offset = 0;  // in RankSnapshot::bytes
  size_t nbytes() const { return static_cast<size_t>(numel) * DTypeSize(dtype); }
};

struct RankSnapshot {
  explicit RankSnapshot(HostAllocator* allocator = nullptr) : bytes(allocator) {}

  int64_t step = 0;  // global step after which it was taken
  int rank = 0;
  int world_size = 1;
  std::vector<SnapshotSection> sections;
  HostBytes bytes;  // all sections, each at its offset (4096-aligned offsets)

  const SnapshotSection* Find(const std::string& name) const;
  // Adds a section of n elements at the next 4096-aligned offset (growing `bytes`, zeroing the
  // alignment gap); returns its storage, whose contents are unspecified until the caller writes
  // them. Storage moves only when the bytes outgrow their capacity (see Reserve).
  char* AddSection(const std::string& name, DType dtype, int64_t numel);
  // The bytes that sections of these sizes (in bytes, in order) add to the current ones.
  size_t BytesToAdd(const std::vector<size_t>& section_bytes) const;
};

// A bounded pool of snapshot buffers: Acquire blocks while all `capacity` are in use (the
// checkpoint writer returns them when their bytes are on disk), so host memory stays bounded.
class SnapshotPool {
 public:
  // `allocator` (default: aligned host memory) must outlive the pool.
  explicit SnapshotPool(int capacity, HostAllocator* allocator = nullptr)
      : capacity_(capacity), free_(static_cast<size_t>(capacity)) {
    for (auto& p : free_) p = std::make_unique<RankSnapshot>(allocator);
  }
  std::unique_ptr<RankSnapshot> Acquire();
  void Release(std::unique_ptr<RankSnapshot> s);
  int capacity() const { return capacity_; }
  int available() const;  // buffers not acquired now

 private:
  const int capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<RankSnapshot>> free_;
};

}  // namespace zt::ckpt
