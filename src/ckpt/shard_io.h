// Writing one rank's shard file (format.h) from a RankSnapshot: the first half of the commit
// protocol. The file is written as rank-XXXXX.shard.tmp in chunks (several I/O threads at once for
// large shards), fsynced, renamed to rank-XXXXX.shard, and the step directory is fsynced; the
// xxh64 of the whole file is computed on the calling thread while the chunks are written.
// Invariant: the final name appears only after every byte is durable; on failure the temporary
// file is removed (best effort) and the final name is untouched.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "ckpt/fs.h"
#include "ckpt/io_pool.h"
#include "ckpt/manifest.h"
#include "ckpt/snapshot.h"

namespace zt::ckpt {

struct ShardWriteOptions {
  size_t chunk_bytes = 8u << 20;  // rounded up to a multiple of 4096
  bool direct_io = false;         // O_DIRECT through aligned bounce buffers; falls back when refused
  IoPool* pool = nullptr;         // null: every chunk is written on the calling thread
  // Called once every byte of the snapshot has been handed to the file system (before the fsync):
  // from then on the snapshot's buffer may be reused.
  std::function<void()> on_bytes_written;
};

struct ShardWriteResult {
  ShardInfo info;            // sections at their file offsets
  bool used_direct = false;  // false when direct I/O was asked for but refused
};

StatusOr<ShardWriteResult> WriteShard(FileSystem& fs, const std::string& step_dir, const RankSnapshot& snap,
                                      const ShardWriteOptions& o);

}  // namespace zt::ckpt
