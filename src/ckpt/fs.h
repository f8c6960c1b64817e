// FileSystem: the file operations the checkpoint code uses, behind one interface, so that tests
// can put a fault-injecting (fault_fs.h) or slow wrapper between the checkpoint code and the disk.
// PosixFs is the real implementation. Paths are plain strings ("<dir>/<name>").
// Invariant: every operation reports failure as a Status naming the path and the system error;
// nothing here crashes on bad input. WritableFile::PWrite is safe to call from several threads at
// once on disjoint ranges (it is pwrite(2)).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace zt::ckpt {

inline constexpr size_t kDirectIoAlignment = 4096;

class WritableFile {
 public:
  virtual ~WritableFile() = default;  // closes the file if Close was not called (errors ignored)
  // Writes all n bytes at `offset`. With O_DIRECT, data, n and offset must be 4096-aligned.
  virtual Status PWrite(uint64_t offset, const void* data, size_t n) = 0;
  virtual Status Sync() = 0;   // fsync(2)
  virtual Status Close() = 0;  // close(2); later calls fail
  virtual const std::string& path() const = 0;
  virtual bool direct() const = 0;  // opened with O_DIRECT
};

class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads exactly n bytes at `offset`; fewer available is a DataLoss error naming the file.
  virtual Status PRead(uint64_t offset, void* data, size_t n) = 0;
  virtual StatusOr<uint64_t> Size() = 0;
  virtual const std::string& path() const = 0;
};

struct DirEntry {
  std::string name;
  bool is_dir = false;
};

struct CreateOptions {
  bool direct = false;  // O_DIRECT; a file system that refuses it is an InvalidArgument error
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Creates (or truncates) `path` for writing.
  virtual StatusOr<std::unique_ptr<WritableFile>> Create(const std::string& path, const CreateOptions& o) = 0;
  StatusOr<std::unique_ptr<WritableFile>> Create(const std::string& path) { return Create(path, CreateOptions{}); }
  virtual StatusOr<std::unique_ptr<ReadableFile>> OpenRead(const std::string& path) = 0;
  // rename(2): atomically replaces `to` if it exists.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // fsync of a directory: makes creations, renames and removals in it durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual Status Unlink(const std::string& path) = 0;
  virtual Status RemoveDir(const std::string& dir) = 0;  // an empty directory
  // Creates the directory (not its parents); an existing directory is not an error.
  virtual Status MakeDir(const std::string& dir) = 0;
  // The entries of `dir` except "." and "..", in no particular order. NotFound if it is missing.
  virtual StatusOr<std::vector<DirEntry>> List(const std::string& dir) = 0;
  virtual StatusOr<uint64_t> FileSize(const std::string& path) = 0;
  // false if missing; a failure to look (permissions, I/O) is an error.
  virtual StatusOr<bool> Exists(const std::string& path) = 0;

  // Whole small files (manifests, LATEST): built on the calls above.
  StatusOr<std::string> ReadFile(const std::string& path, uint64_t max_bytes = 64ull << 20);
  // Create + PWrite + Sync + Close (no rename): the caller renames it into place.
  Status WriteAndSync(const std::string& path, const std::string& bytes);
};

// The real file system (POSIX calls).
class PosixFs final : public FileSystem {
 public:
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
};

// A process-wide PosixFs.
FileSystem* DefaultFs();

// "<dir>/<name>" (no doubled slash).
std::string JoinPath(const std::string& dir, const std::string& name);
// The last path component: "a/b/c" -> "c".
std::string BaseName(const std::string& path);

}  // namespace zt::ckpt
