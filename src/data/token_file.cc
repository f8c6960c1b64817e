// Token file reading (mmap + strict validation) and atomic writing. The header is decoded byte by
// byte as little-endian, so the format does not depend on the host.
#include "data/token_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "core/atomic_file.h"

namespace zt::data {
namespace {

// Header layout (all little-endian).
constexpr size_t kMagicOffset = 0;
constexpr size_t kVersionOffset = 8;
constexpr size_t kTokenSizeOffset = 12;
constexpr size_t kCountOffset = 16;
constexpr size_t kVocabOffset = 24;
constexpr size_t kReservedOffset = 32;

uint64_t LoadLE(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void StoreLE(unsigned char* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

inline uint32_t LoadToken(const unsigned char* base, int64_t i, int token_size) {
  const unsigned char* p = base + i * token_size;
  if (token_size == 2) return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8);
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

std::string Printable(const unsigned char* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (std::isprint(p[i]) && p[i] != '\\') {
      s += static_cast<char>(p[i]);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", p[i]);
      s += buf;
    }
  }
  return s;
}

std::string Bytes(uint64_t n) { return std::to_string(n) + (n == 1 ? " byte" : " bytes"); }

}  // namespace

int TokenSizeForVocab(int64_t vocab) { return vocab <= 65536 ? 2 : 4; }

TokenFile::~TokenFile() {
  if (mapping_) munmap(mapping_, mapped_bytes_);
}

StatusOr<std::unique_ptr<TokenFile>> TokenFile::Open(const std::string& path, int64_t expected_vocab) {
  if (expected_vocab < 1 || expected_vocab > kMaxVocab)
    return InvalidArgument("opening token file " + path + ": expected vocab " + std::to_string(expected_vocab) +
                           " is out of range; it must be in [1, 2^31]");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string msg = "cannot open token file " + path + ": " + std::strerror(err);
    if (err == EACCES) return PermissionDenied(msg);
    return NotFound(msg + " (create one with `ztrain data synth` or check the path)");
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return DataLoss("cannot stat token file " + path + ": " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument("token file " + path + " is not a regular file");
  }
  const uint64_t file_bytes = static_cast<uint64_t>(st.st_size);
  if (file_bytes == 0) {
    ::close(fd);
    return DataLoss("token file " + path + " is empty (0 bytes); a token file starts with a 64-byte header");
  }
  if (file_bytes < static_cast<uint64_t>(kTokenFileHeaderBytes)) {
    ::close(fd);
    return DataLoss("token file " + path + " is too short for its header: it has " + Bytes(file_bytes) +
                    ", the header alone is 64; the file is truncated or not a token file");
  }
  auto f = std::unique_ptr<TokenFile>(new TokenFile());
  f->path_ = path;
  void* p = mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_err = errno;
  ::close(fd);
  if (p == MAP_FAILED) return DataLoss("cannot map token file " + path + ": " + std::strerror(map_err));
  f->mapping_ = p;
  f->mapped_bytes_ = file_bytes;
  const auto* h = static_cast<const unsigned char*>(p);

  if (std::memcmp(h + kMagicOffset, kTokenFileMagic, 8) != 0)
    return DataLoss("token file " + path + " has bad magic \"" + Printable(h, 8) +
                    "\" (expected \"ZTTOKENS\"); it is not a ztrain token file");
  const uint64_t version = LoadLE(h + kVersionOffset, 4);
  if (version != kTokenFileVersion)
    return DataLoss("token file " + path + " has format version " + std::to_string(version) +
                    "; this ztrain reads version " + std::to_string(kTokenFileVersion) +
                    " (rewrite the file with this ztrain or upgrade)");
  const uint64_t token_size = LoadLE(h + kTokenSizeOffset, 4);
  if (token_size != 2 && token_size != 4)
    return DataLoss("token file " + path + " has token size " + std::to_string(token_size) +
                    " bytes; it must be 2 (u16) or 4 (u32)");
  for (size_t i = kReservedOffset; i < static_cast<size_t>(kTokenFileHeaderBytes); ++i) {
    if (h[i] != 0)
      return DataLoss("token file " + path + " has a non-zero reserved header byte at offset " + std::to_string(i) +
                      "; the header is damaged or from an incompatible writer");
  }
  const uint64_t count = LoadLE(h + kCountOffset, 8);
  const uint64_t recorded_vocab = LoadLE(h + kVocabOffset, 8);
  const uint64_t data_bytes = file_bytes - kTokenFileHeaderBytes;
  if (count > data_bytes / token_size) {
    // Careful not to overflow: count * token_size may exceed 2^64 for a damaged header.
    std::string detail;
    if (count > (std::numeric_limits<uint64_t>::max() - kTokenFileHeaderBytes) / token_size) {
      detail = "which is more than any file can hold";
    } else {
      uint64_t expected = kTokenFileHeaderBytes + count * token_size;
      detail = "which needs " + Bytes(expected) + ", but the file has " + Bytes(file_bytes) + ": truncated by " +
               Bytes(expected - file_bytes);
    }
    return DataLoss("token file " + path + " header declares " + std::to_string(count) + " tokens of " +
                    std::to_string(token_size) + " bytes, " + detail);
  }
  if (count * token_size != data_bytes) {
    uint64_t extra = data_bytes - count * token_size;
    return DataLoss("token file " + path + " has " + Bytes(extra) + " of extra data after the " +
                    std::to_string(count) + " tokens its header declares (expected " +
                    Bytes(kTokenFileHeaderBytes + count * token_size) + ", found " + Bytes(file_bytes) +
                    "); the file is damaged or was appended to");
  }
  if (recorded_vocab != 0 && recorded_vocab != static_cast<uint64_t>(expected_vocab))
    return InvalidArgument("token file " + path + " was written for vocab " + std::to_string(recorded_vocab) +
                           " but the model's vocab is " + std::to_string(expected_vocab) +
                           "; use data made with the model's tokenizer (or record vocab 0 if the model's "
                           "vocab is padded)");

  f->tokens_ = h + kTokenFileHeaderBytes;
  f->count_ = static_cast<int64_t>(count);
  f->token_size_ = static_cast<int>(token_size);
  f->vocab_ = expected_vocab;
  f->recorded_vocab_ = static_cast<int64_t>(recorded_vocab);

  // Scan every token once, so no later read can see an id outside the vocabulary.
  // expected_vocab <= 2^31, so the limit fits u32.
  const uint32_t limit = static_cast<uint32_t>(expected_vocab);
  const int ts = f->token_size_;
  const unsigned char* base = f->tokens_;
  uint32_t max_seen = 0;
  for (int64_t i = 0; i < f->count_; ++i) max_seen = std::max(max_seen, LoadToken(base, i, ts));
  if (f->count_ > 0 && max_seen >= limit) {
    for (int64_t i = 0; i < f->count_; ++i) {
      uint32_t t = LoadToken(base, i, ts);
      if (t < limit) continue;
      std::string msg = "token file " + path + ": token " + std::to_string(t) + " at index " + std::to_string(i) +
                        " is >= the vocab " + std::to_string(expected_vocab);
      if (recorded_vocab != 0) return DataLoss(msg + " the file records; the file is damaged");
      return InvalidArgument(msg + " of the model; the data was tokenized for a different vocabulary");
    }
  }
  return f;
}

int32_t TokenFile::at(int64_t i) const {
  ZT_CHECK(i >= 0 && i < count_) << "token index " << i << " out of range [0, " << count_ << ")";
  return static_cast<int32_t>(LoadToken(tokens_, i, token_size_));
}

void TokenFile::Read(int64_t start, int64_t n, int32_t* out) const {
  ZT_CHECK(start >= 0 && n >= 0 && start <= count_ - n)
      << "token range [" << start << ", " << start << "+" << n << ") out of [0, " << count_ << ")";
  if (token_size_ == 2) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(LoadToken(tokens_, start + i, 2));
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(LoadToken(tokens_, start + i, 4));
  }
}

Status WriteTokenFile(const std::string& path, std::span<const int32_t> tokens, int token_size, int64_t vocab) {
  if (token_size != 2 && token_size != 4)
    return InvalidArgument("writing token file " + path + ": token size " + std::to_string(token_size) +
                           " is not 2 (u16) or 4 (u32)");
  if (vocab < 0 || vocab > kMaxVocab)
    return InvalidArgument("writing token file " + path + ": vocab " + std::to_string(vocab) +
                           " is out of range [0 (unknown), 2^31]");
  if (token_size == 2 && vocab > 65536)
    return InvalidArgument("writing token file " + path + ": vocab " + std::to_string(vocab) +
                           " does not fit u16 tokens; use token size 4");
  const int64_t fits = token_size == 2 ? 65536 : kMaxVocab;
  const int64_t limit = vocab > 0 ? vocab : fits;
  for (size_t i = 0; i < tokens.size(); ++i) {
    int64_t t = tokens[i];
    if (t < 0 || t >= limit)
      return InvalidArgument("writing token file " + path + ": token " + std::to_string(t) + " at index " +
                             std::to_string(i) + " is outside [0, " + std::to_string(limit) + ")" +
                             (vocab > 0 ? " (the vocab)" : " (what the token size holds)"));
  }
  unsigned char header[kTokenFileHeaderBytes] = {};
  std::memcpy(header + kMagicOffset, kTokenFileMagic, 8);
  StoreLE(header + kVersionOffset, kTokenFileVersion, 4);
  StoreLE(header + kTokenSizeOffset, static_cast<uint64_t>(token_size), 4);
  StoreLE(header + kCountOffset, tokens.size(), 8);
  StoreLE(header + kVocabOffset, static_cast<uint64_t>(vocab), 8);

  ZT_ASSIGN_OR_RETURN(auto out, AtomicFile::Create(path));
  ZT_RETURN_IF_ERROR(out->Write(header, sizeof(header)));
  constexpr size_t kChunkTokens = 1 << 18;
  std::vector<unsigned char> buf(kChunkTokens * static_cast<size_t>(token_size));
  for (size_t start = 0; start < tokens.size(); start += kChunkTokens) {
    size_t n = std::min(kChunkTokens, tokens.size() - start);
    for (size_t i = 0; i < n; ++i)
      StoreLE(buf.data() + i * token_size, static_cast<uint32_t>(tokens[start + i]), token_size);
    ZT_RETURN_IF_ERROR(out->Write(buf.data(), n * token_size));
  }
  return out->Commit();
}

}  // namespace zt::data
