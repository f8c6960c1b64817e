// Checksums of checkpoint files: xxh64 (seed 0) of a whole file, computed streaming (Update per
// chunk), written as "xxh64:<16 lowercase hex digits>".
// Invariant: Xxh64 over a byte sequence gives the same digest however the sequence is split into
// Update calls, so writers may hash chunk by chunk and readers may verify chunk by chunk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "ckpt/fs.h"
#include "core/status.h"

namespace zt::ckpt {

class Xxh64 {
 public:
  Xxh64();
  ~Xxh64();
  Xxh64(const Xxh64&) = delete;
  Xxh64& operator=(const Xxh64&) = delete;

  void Update(const void* data, size_t n);
  uint64_t Digest() const;

 private:
  void* state_;  // XXH64_state_t
};

uint64_t Xxh64Of(const void* data, size_t n);

std::string FormatChecksum(uint64_t digest);                    // "xxh64:0123456789abcdef"
std::optional<uint64_t> ParseChecksum(const std::string& text);  // nullopt unless exactly that form

// Reads the whole file in chunks (default 8 MiB) and returns its xxh64 digest and size.
struct FileDigest {
  uint64_t digest = 0;
  uint64_t bytes = 0;
};
StatusOr<FileDigest> ChecksumFile(FileSystem& fs, const std::string& path, size_t chunk_bytes = 8u << 20);

}  // namespace zt::ckpt
