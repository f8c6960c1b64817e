// CheckpointWriter: one per rank; persists RankSnapshots to <dir> in the background with the
// commit protocol of commit.h (docs/checkpoint-format.md).
//
//   auto w = CheckpointWriter::Open(options);        // collective: every rank opens its writer
//   w->Submit(std::move(snapshot), manifest_fields);  // returns at once (blocks only at C in flight)
//   ...
//   w->Flush();                                       // waits for every submitted checkpoint
//
// Submit queues the snapshot and returns; a driver thread per checkpoint writes the shard in
// chunks through a shared pool of I/O threads (IoPool, FIFO, so older checkpoints go first) and
// hands the snapshot back to its SnapshotPool as soon as its bytes are written; one committer
// thread then, in step order, reports the shard through the Store and (rank 0) waits for every
// rank, commits the manifest and LATEST, and collects garbage; other ranks wait for rank 0's
// verdict (wait_for_commit). At most max_in_flight checkpoints are between Submit and that end.
//
// Open (collective): rank 0 creates <dir>, removes the leftovers of a crashed run (tmp files,
// step directories without a manifest, step directories newer than LATEST) and then lets the
// other ranks through (store key "ckpt/open"). The Store must be scoped to this attempt of the
// job (e.g. a PrefixStore per restart), since its keys name only steps.
//
// Invariants: a checkpoint whose shard or commit failed never becomes LATEST; commits happen in
// step order; a failure is reported exactly once, by the next Submit or Flush, whichever comes
// first (Submit always takes and queues its snapshot, so ranks stay in step with each other).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "ckpt/fs.h"
#include "ckpt/manifest.h"
#include "ckpt/snapshot.h"
#include "comm/store.h"

namespace zt::ckpt {

struct WriterOptions {
  std::string dir;
  int rank = 0;
  int world_size = 1;
  comm::Store* store = nullptr;  // required when world_size > 1; one in-process store otherwise
  FileSystem* fs = nullptr;      // default: the real file system
  SnapshotPool* pool = nullptr;  // where written snapshots go; null: they are freed
  int max_in_flight = 2;         // C: Submit blocks while C checkpoints are in flight
  int io_threads = 4;            // chunk writers shared by all checkpoints in flight
  size_t chunk_bytes = 8u << 20;
  bool direct_io = false;        // O_DIRECT (falls back to buffered, with a warning, when refused)
  int keep_last = 2;             // committed checkpoints kept; <= 0 keeps all
  bool wait_for_commit = true;   // ranks > 0 wait for rank 0's commit before a checkpoint is done
  // Called on the committer thread after each checkpoint, in step order, with its outcome.
  std::function<void(int64_t step, const Status& outcome)> on_done;
};

struct WriterStats {
  int64_t last_committed_step = -1;  // on this rank's view (ranks > 0: with wait_for_commit)
  int64_t committed = 0;
  int64_t failed = 0;
  int max_in_flight_seen = 0;
  uint64_t bytes_written = 0;        // shard bytes of successful checkpoints
  double last_write_seconds = 0;     // the last shard's write (create to directory fsync)
};

class CheckpointWriter {
 public:
  static StatusOr<std::unique_ptr<CheckpointWriter>> Open(WriterOptions o);
  ~CheckpointWriter();  // waits for everything in flight (errors are logged)
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Takes the snapshot (its step, rank and world size must match; steps must increase) and queues
  // it; `fields` is the manifest less its shards (step and world_size come from the snapshot; only
  // rank 0's is used). Returns an earlier checkpoint's failure, if one is unreported.
  Status Submit(std::unique_ptr<RankSnapshot> snapshot, const Manifest& fields);
  // Waits for every submitted checkpoint; returns the unreported failures (the first, with a count).
  Status Flush();

  int in_flight() const;
  WriterStats stats() const;
  const WriterOptions& options() const;

 private:
  struct Impl;
  explicit CheckpointWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace zt::ckpt
