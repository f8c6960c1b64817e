// AtomicFile: writes a file so that readers see either the old file or the complete new one.
// Invariant: bytes go to "<path>.tmp"; Commit() fsyncs it, renames it over <path> and fsyncs the
// directory. An AtomicFile destroyed without a successful Commit() removes its temporary file, so
// a failed or abandoned write never touches what <path> held before.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "core/status.h"

namespace zt {

class AtomicFile {
 public:
  static StatusOr<std::unique_ptr<AtomicFile>> Create(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  Status Write(const void* data, size_t n);
  Status Commit();

 private:
  AtomicFile(std::string path, std::string tmp, int fd) : path_(std::move(path)), tmp_(std::move(tmp)), fd_(fd) {}
  void Abandon();

  std::string path_;
  std::string tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// Writes `bytes` to `path` through an AtomicFile.
Status WriteFileAtomically(const std::string& path, const std::string& bytes);

}  // namespace zt
