// Test file systems that wrap another one (normally PosixFs on a real directory):
//
// FaultInjectingFs simulates a process crash at a NAMED KILL POINT. Every write, fsync, rename,
// mkdir and removal is a point named "<kind>.<op>", kind from the file name (see PointFor):
//   shard.create shard.write shard.fsync shard.rename      (rank-XXXXX.shard[.tmp])
//   manifest.create manifest.write manifest.fsync manifest.rename   (manifest.json[.tmp])
//   latest.create latest.write latest.fsync latest.rename  (LATEST[.tmp])
//   dir.create dir.fsync gc.unlink gc.rmdir                (any directory / removal)
// Armed with (point, n), the n-th time the point is reached the operation fails (a write may land
// a prefix of its bytes first) and every later operation of any kind fails, as if the process had
// died there. With lose_unsynced (the default) the crash also throws away what a power cut may
// lose: bytes written since a file's last fsync (the file is cut back to its size at that fsync),
// renames and mkdirs whose directory was not fsynced afterwards (they are undone). What survives
// is what a correct commit protocol may rely on, so "restart with a fresh PosixFs and check" tests
// the protocol, not the page cache.
//
// SlowFs sleeps before writes and fsyncs (for concurrency tests and benchmarks of overlap).
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "ckpt/fs.h"

namespace zt::ckpt {

class FaultInjectingFs final : public FileSystem {
 public:
  struct Options {
    bool lose_unsynced = true;
  };
  explicit FaultInjectingFs(FileSystem* base) : FaultInjectingFs(base, Options{}) {}
  FaultInjectingFs(FileSystem* base, Options o) : base_(base), o_(o) {}

  // Crash the `hit`-th time (1-based, counted from now) `point` is reached. partial_write: when the
  // point is a write, half of its bytes (rounded down to 4096 when possible) land first.
  void Arm(const std::string& point, int hit, bool partial_write = false);
  void Disarm();
  bool crashed() const { return crashed_.load(); }
  std::string crash_point() const;  // "shard.write#3", or "" before a crash
  int hits(const std::string& point) const;  // times the point was reached (since construction)
  std::map<std::string, int> all_hits() const;

  // Every kill point name this wrapper can produce.
  static const std::vector<std::string>& KillPoints();
  // "shard", "manifest", "latest" or "file", from the file name.
  static std::string KindOf(const std::string& path);

  StatusOr<std::unique_ptr<WritableFile>> Create(const std::string& path, const CreateOptions& o) override;
  using FileSystem::Create;
  StatusOr<std::unique_ptr<ReadableFile>> OpenRead(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;
  Status Unlink(const std::string& path) override;
  Status RemoveDir(const std::string& dir) override;
  Status MakeDir(const std::string& dir) override;
  StatusOr<std::vector<DirEntry>> List(const std::string& dir) override;
  StatusOr<uint64_t> FileSize(const std::string& path) override;
  StatusOr<bool> Exists(const std::string& path) override;

 private:
  friend class FaultWritableFile;
  enum class Decision { kProceed, kCrashNow, kDead };
  Decision Reach(const std::string& point);  // counts the hit; decides
  Status Dead() const;                         // the error every operation returns after the crash
  void SimulateCrash();                        // applies lose_unsynced; op_mu_ must not be held
  void NoteWrite(const std::string& path);
  void NoteSync(const std::string& path);

  struct Tracked {
    uint64_t synced_size = 0;
    bool dirty = false;
  };
  struct PendingRename {
    std::string from, to, backup;  // backup: a hard link to what `to` held before, or ""
  };

  FileSystem* base_;
  Options o_;
  std::shared_mutex op_mu_;  // shared by operations, exclusive while the crash is simulated
  mutable std::mutex mu_;    // guards everything below
  std::string armed_point_;
  int armed_hit_ = 0;
  bool partial_write_ = false;
  std::map<std::string, int> hits_;
  std::map<std::string, int> hits_at_arm_;
  std::atomic<bool> crashed_{false};
  std::string crash_point_;
  std::map<std::string, Tracked> files_;           // by current path
  std::vector<PendingRename> pending_renames_;     // not yet made durable by SyncDir
  std::vector<std::string> pending_mkdirs_;
  int backups_ = 0;
};

class SlowFs final : public FileSystem {
 public:
  struct Delays {
    std::chrono::microseconds per_write{0};  // before each PWrite
    std::chrono::microseconds per_sync{0};   // before each file fsync
  };
  SlowFs(FileSystem* base, Delays d) : base_(base), d_(d) {}

  StatusOr<std::unique_ptr<WritableFile>> Create(const std::string& path, const CreateOptions& o) override;
  using FileSystem::Create;
  StatusOr<std::unique_ptr<ReadableFile>> OpenRead(const std::string& path) override { return base_->OpenRead(path); }
  Status Rename(const std::string& from, const std::string& to) override { return base_->Rename(from, to); }
  Status SyncDir(const std::string& dir) override { return base_->SyncDir(dir); }
  Status Unlink(const std::string& path) override { return base_->Unlink(path); }
  Status RemoveDir(const std::string& dir) override { return base_->RemoveDir(dir); }
  Status MakeDir(const std::string& dir) override { return base_->MakeDir(dir); }
  StatusOr<std::vector<DirEntry>> List(const std::string& dir) override { return base_->List(dir); }
  StatusOr<uint64_t> FileSize(const std::string& path) override { return base_->FileSize(path); }
  StatusOr<bool> Exists(const std::string& path) override { return base_->Exists(path); }

 private:
  FileSystem* base_;
  Delays d_;
};

}  // namespace zt::ckpt
