// The second half of the commit protocol (docs/checkpoint-format.md), one function per step:
//   1. every rank, after WriteShard: ReportShard -> store key "ckpt/<step>/rank/<r>" holds the
//      ShardInfo as JSON, or the rank's error;
//   2. rank 0: CollectReports waits (store timeout) for all of them;
//   3. rank 0: CommitCheckpoint writes manifest.json.tmp, fsync, rename, fsync the step directory,
//      fsync <dir>, then LATEST.tmp, fsync, rename over LATEST, fsync <dir>: THE COMMIT POINT;
//   4. rank 0: CollectGarbage keeps the newest keep_last committed checkpoints.
// Invariants: LATEST only ever names a directory whose manifest and every shard are durable; a
// failed step never reaches step 3; garbage collection never removes what LATEST names, nor a
// step directory that may still be in flight (newer than the newest commit), except at open.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ckpt/fs.h"
#include "ckpt/manifest.h"
#include "comm/store.h"

namespace zt::ckpt {

std::string ReportKey(int64_t step, int rank);  // "ckpt/<step>/rank/<r>"
std::string CommitKey(int64_t step);            // "ckpt/<step>/commit": "ok" or the error

Status ReportShard(comm::Store& store, int64_t step, int rank, const StatusOr<ShardInfo>& shard);
// Waits for every rank's report of `step`, then deletes the keys. An error report (or a timeout)
// is returned as an error naming the rank.
StatusOr<std::vector<ShardInfo>> CollectReports(comm::Store& store, int64_t step, int world_size);

// Writes the manifest (m.shards filled, m.step the checkpoint's) and moves LATEST to it. The
// manifest is first checked with ParseManifest, so nothing unreadable is ever committed. When the
// manifest landed but LATEST could not be moved, the manifest is removed again (best effort).
Status CommitCheckpoint(FileSystem& fs, const std::string& dir, const Manifest& m);

// Creates `dir` and its missing parents.
Status MakeDirs(FileSystem& fs, const std::string& dir);

struct GcResult {
  std::vector<std::string> removed;  // names relative to dir ("step-...", "step-.../x.tmp", "LATEST.tmp")
};
// newest_committed: the step LATEST names (-1: none). Removes committed checkpoints (with a
// manifest, not newer than newest_committed) beyond the newest keep_last (<= 0: keep all),
// step directories older than newest_committed without a manifest, and *.tmp files in what is
// kept. With at_open (no checkpoint in flight: a writer is starting), also step directories newer
// than newest_committed: the leftovers of a run that crashed before committing them.
StatusOr<GcResult> CollectGarbage(FileSystem& fs, const std::string& dir, int keep_last, int64_t newest_committed,
                                  bool at_open);

// The step LATEST names: -1 when there is no LATEST file; an error when it cannot be read or
// does not hold a checkpoint name.
StatusOr<int64_t> ReadLatestStep(FileSystem& fs, const std::string& dir);

}  // namespace zt::ckpt
