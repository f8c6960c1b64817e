// Reading committed checkpoints: what LATEST names, the list of checkpoints in a directory,
// any byte range of any section of any shard (for restores and resharding), and full verification.
//
// What readers trust: OpenLatest follows LATEST only; it never guesses. Its errors:
//   NotFound  - the directory or LATEST is missing (nothing was ever committed there);
//   DataLoss  - LATEST is garbled, names a missing directory, or that directory's manifest is
//               missing, unparsable or for another step. The message says to run
//               `ztrain ckpt ls` to find an older committed checkpoint and open it by step.
// Opening reads only the manifest (and, lazily, each shard's 64-byte header); Verify re-reads and
// checksums every byte.
// Invariant: nothing read from disk is trusted: every size, offset and header field is checked
// against the manifest before use, and problems are Status errors naming the file, never crashes.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ckpt/fs.h"
#include "ckpt/manifest.h"

namespace zt::ckpt {

inline constexpr int64_t kLatestStep = -1;

// The checkpoint name LATEST holds ("step-..."). NotFound when there is no LATEST.
StatusOr<std::string> ReadLatestName(FileSystem& fs, const std::string& dir);

enum class CheckpointState {
  kLatest,       // LATEST names it
  kCommitted,    // a valid manifest, older than LATEST's
  kUncommitted,  // a valid manifest, but newer than LATEST's (or no LATEST): a crash before the commit
  kIncomplete,   // no manifest: being written, or abandoned
  kInvalid,      // a manifest that does not parse
};
const char* CheckpointStateName(CheckpointState s);  // "LATEST", "committed", ...

struct CheckpointEntry {
  std::string name;  // "step-..."
  int64_t step = 0;
  CheckpointState state = CheckpointState::kIncomplete;
  std::optional<Manifest> manifest;  // when it parsed
  std::string problem;               // why kInvalid / kIncomplete
  uint64_t bytes = 0;                // sum of the manifest's shard sizes
};

struct CheckpointList {
  std::vector<CheckpointEntry> entries;  // every step directory, oldest first
  std::string latest;                    // what LATEST names ("" when none)
  std::string latest_problem;            // why LATEST is unusable ("" when fine or absent)
};
StatusOr<CheckpointList> ListCheckpoints(const std::string& dir, FileSystem* fs = nullptr);

class CheckpointReader {
 public:
  // step: a step number, or kLatestStep for what LATEST names.
  static StatusOr<std::unique_ptr<CheckpointReader>> Open(const std::string& dir, int64_t step,
                                                          FileSystem* fs = nullptr);
  const Manifest& manifest() const { return manifest_; }
  const std::string& path() const { return path_; }  // "<dir>/step-..."
  const std::string& name() const { return name_; }

  const SnapshotSection* FindSection(int rank, const std::string& section) const;
  // Bytes [offset, offset + n) of a section of rank `rank`'s shard. Thread-safe.
  Status ReadBytes(int rank, const std::string& section, uint64_t offset, size_t n, void* out);
  // Elements [first, first + count) of a section whose dtype must be `dtype`.
  Status ReadElements(int rank, const std::string& section, DType dtype, int64_t first, int64_t count, void* out);

 private:
  CheckpointReader() = default;
  StatusOr<ReadableFile*> Shard(int rank);  // opens and checks the header on first use

  FileSystem* fs_ = nullptr;
  std::string path_;
  std::string name_;
  Manifest manifest_;
  std::mutex mu_;
  std::vector<std::unique_ptr<ReadableFile>> files_;
};

// LoadCheckpoint(dir, step or kLatestStep): CheckpointReader::Open.
inline StatusOr<std::unique_ptr<CheckpointReader>> LoadCheckpoint(const std::string& dir, int64_t step,
                                                                  FileSystem* fs = nullptr) {
  return CheckpointReader::Open(dir, step, fs);
}
// The manifest of what LATEST names (no checksums read; see Verify).
StatusOr<Manifest> OpenLatest(const std::string& dir, FileSystem* fs = nullptr);

struct VerifyReport {
  std::string path;
  int64_t step = 0;
  int shards = 0;
  uint64_t bytes = 0;
};
// Re-reads every shard of checkpoint `name` ("step-..."; "" for LATEST's) and checks its size,
// header (step, rank, world size, section count) and xxh64 against the manifest. A DataLoss error
// lists every problem, one per line, each naming the file.
StatusOr<VerifyReport> Verify(const std::string& dir, const std::string& name, FileSystem* fs = nullptr);

}  // namespace zt::ckpt
