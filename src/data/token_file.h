// Token files: a flat array of token ids behind a 64-byte header (format in docs/data.md).
// Invariant: a TokenFile that Open() returned is fully validated — header, exact length, and every
// token < vocab() — so readers never see an id the model cannot embed. WriteTokenFile only writes
// files that Open() accepts, and writes them atomically.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/status.h"

namespace zt::data {

inline constexpr char kTokenFileMagic[8] = {'Z', 'T', 'T', 'O', 'K', 'E', 'N', 'S'};
inline constexpr uint32_t kTokenFileVersion = 1;
inline constexpr int64_t kTokenFileHeaderBytes = 64;
// Token ids are int32 in the engine, so a vocabulary is at most 2^31 ids.
inline constexpr int64_t kMaxVocab = int64_t{1} << 31;

// The token size a writer should use for a vocabulary: 2 (u16) when vocab <= 65536, else 4 (u32).
int TokenSizeForVocab(int64_t vocab);

class TokenFile {
 public:
  // Memory-maps `path` read-only and validates it against the model's vocabulary (1..2^31).
  // Errors: NotFound (cannot open), DataLoss (damaged file), InvalidArgument (a valid file that
  // does not fit this vocabulary). Messages name the path.
  static StatusOr<std::unique_ptr<TokenFile>> Open(const std::string& path, int64_t expected_vocab);
  ~TokenFile();
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;

  const std::string& path() const { return path_; }
  int64_t size() const { return count_; }                     // number of tokens
  int token_size() const { return token_size_; }              // bytes per token: 2 or 4
  int64_t vocab() const { return vocab_; }                    // the expected vocab Open() checked against
  int64_t recorded_vocab() const { return recorded_vocab_; }  // 0 = the writer did not record one

  int32_t at(int64_t i) const;  // CHECKs 0 <= i < size()
  // Copies tokens [start, start + n) into out; CHECKs the range.
  void Read(int64_t start, int64_t n, int32_t* out) const;

 private:
  TokenFile() = default;

  std::string path_;
  void* mapping_ = nullptr;
  size_t mapped_bytes_ = 0;
  const unsigned char* tokens_ = nullptr;
  int64_t count_ = 0;
  int token_size_ = 0;
  int64_t vocab_ = 0;
  int64_t recorded_vocab_ = 0;
};

// Writes tokens as a token file with the given token size (2 or 4) and recorded vocab (0 =
// unknown). Rejects, without touching `path`, tokens that are negative, do not fit the token size,
// or are >= a non-zero vocab. Atomic: temp file, fsync, rename.
Status WriteTokenFile(const std::string& path, std::span<const int32_t> tokens, int token_size, int64_t vocab);

}  // namespace zt::data
