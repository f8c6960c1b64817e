// xxh64 through libxxhash's streaming API.
#include "ckpt/checksum.h"

#include <xxhash.h>

#include <cstdio>
#include <vector>

namespace zt::ckpt {

Xxh64::Xxh64() : state_(XXH64_createState()) {
  ZT_CHECK(state_ != nullptr) << "XXH64_createState failed (out of memory)";
  XXH64_reset(static_cast<XXH64_state_t*>(state_), 0);
}

Xxh64::~Xxh64() { XXH64_freeState(static_cast<XXH64_state_t*>(state_)); }

void Xxh64::Update(const void* data, size_t n) {
  if (n > 0) XXH64_update(static_cast<XXH64_state_t*>(state_), data, n);
}

uint64_t Xxh64::Digest() const { return XXH64_digest(static_cast<const XXH64_state_t*>(state_)); }

uint64_t Xxh64Of(const void* data, size_t n) { return XXH64(data, n, 0); }

std::string FormatChecksum(uint64_t digest) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "xxh64:%016llx", static_cast<unsigned long long>(digest));
  return buf;
}

std::optional<uint64_t> ParseChecksum(const std::string& text) {
  static const std::string kPrefix = "xxh64:";
  if (text.size() != kPrefix.size() + 16 || text.compare(0, kPrefix.size(), kPrefix) != 0) return std::nullopt;
  uint64_t v = 0;
  for (size_t i = kPrefix.size(); i < text.size(); ++i) {
    char c = text[i];
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return std::nullopt;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  return v;
}

StatusOr<FileDigest> ChecksumFile(FileSystem& fs, const std::string& path, size_t chunk_bytes) {
  ZT_ASSIGN_OR_RETURN(auto f, fs.OpenRead(path));
  ZT_ASSIGN_OR_RETURN(uint64_t size, f->Size());
  std::vector<char> buf(std::min<uint64_t>(chunk_bytes, std::max<uint64_t>(size, 1)));
  Xxh64 h;
  for (uint64_t off = 0; off < size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
    ZT_RETURN_IF_ERROR(f->PRead(off, buf.data(), n));
    h.Update(buf.data(), n);
    off += n;
  }
  return FileDigest{h.Digest(), size};
}

}  // namespace zt::ckpt
