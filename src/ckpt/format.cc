// Names of checkpoint files and the shard header's byte layout:
//   0 magic "ZTCKSHRD" | 8 u32 version | 12 u32 header bytes (64) | 16 i64 step | 24 i32 rank |
//   28 i32 world_size | 32 u64 data offset | 40 u64 data bytes | 48 u32 sections | 52 u32 zero |
//   56 u64 xxh64 of bytes [0, 56)
#include "ckpt/format.h"

#include <cstdio>
#include <cstring>
#include <type_traits>

#include "ckpt/checksum.h"

namespace zt::ckpt {
namespace {

constexpr char kMagic[8] = {'Z', 'T', 'C', 'K', 'S', 'H', 'R', 'D'};

template <typename T>
void Put(char* p, T v) {
  using U = std::make_unsigned_t<T>;
  U u = static_cast<U>(v);
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<char>((u >> (8 * i)) & 0xff);
}

template <typename T>
T Take(const char* p) {
  using U = std::make_unsigned_t<T>;
  U u = 0;
  for (size_t i = 0; i < sizeof(T); ++i) u |= static_cast<U>(static_cast<unsigned char>(p[i])) << (8 * i);
  return static_cast<T>(u);
}

}  // namespace

std::string StepDirName(int64_t step) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "step-%012lld", static_cast<long long>(step));
  return buf;
}

std::optional<int64_t> ParseStepDirName(const std::string& name) {
  if (name.size() != 17 || name.compare(0, 5, "step-") != 0) return std::nullopt;
  int64_t v = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

std::string ShardFileName(int rank) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "rank-%05d.shard", rank);
  return buf;
}

std::string LatestText(const std::string& name) { return name + "\n"; }

std::optional<std::string> ParseLatestText(const std::string& text) {
  if (text.empty() || text.back() != '\n') return std::nullopt;
  std::string name = text.substr(0, text.size() - 1);
  if (!ParseStepDirName(name)) return std::nullopt;
  return name;
}

std::array<char, kShardHeaderBytes> EncodeShardHeader(const ShardHeader& h) {
  std::array<char, kShardHeaderBytes> b{};
  std::memcpy(b.data(), kMagic, 8);
  Put<uint32_t>(b.data() + 8, h.version);
  Put<uint32_t>(b.data() + 12, static_cast<uint32_t>(kShardHeaderBytes));
  Put<int64_t>(b.data() + 16, h.step);
  Put<int32_t>(b.data() + 24, h.rank);
  Put<int32_t>(b.data() + 28, h.world_size);
  Put<uint64_t>(b.data() + 32, h.data_offset);
  Put<uint64_t>(b.data() + 40, h.data_bytes);
  Put<uint32_t>(b.data() + 48, h.num_sections);
  Put<uint32_t>(b.data() + 52, 0);
  Put<uint64_t>(b.data() + 56, Xxh64Of(b.data(), 56));
  return b;
}

StatusOr<ShardHeader> DecodeShardHeader(const char* bytes, size_t n, const std::string& label) {
  if (n < kShardHeaderBytes)
    return DataLoss(label + ": " + std::to_string(n) + " bytes, too short for the " +
                    std::to_string(kShardHeaderBytes) + "-byte shard header");
  if (std::memcmp(bytes, kMagic, 8) != 0)
    return DataLoss(label + ": not a ztrain shard file (magic is not ZTCKSHRD)");
  uint64_t stored = Take<uint64_t>(bytes + 56);
  if (stored != Xxh64Of(bytes, 56))
    return DataLoss(label + ": the shard header's checksum does not match its bytes: the header is corrupt");
  ShardHeader h;
  h.version = Take<uint32_t>(bytes + 8);
  if (h.version != kShardVersion)
    return DataLoss(label + ": shard format version " + std::to_string(h.version) + "; this ztrain reads version " +
                    std::to_string(kShardVersion));
  uint32_t header_bytes = Take<uint32_t>(bytes + 12);
  if (header_bytes != kShardHeaderBytes)
    return DataLoss(label + ": header size field is " + std::to_string(header_bytes) + ", expected 64");
  h.step = Take<int64_t>(bytes + 16);
  h.rank = Take<int32_t>(bytes + 24);
  h.world_size = Take<int32_t>(bytes + 28);
  h.data_offset = Take<uint64_t>(bytes + 32);
  h.data_bytes = Take<uint64_t>(bytes + 40);
  h.num_sections = Take<uint32_t>(bytes + 48);
  if (h.step < 0) return DataLoss(label + ": negative step " + std::to_string(h.step) + " in the shard header");
  if (h.world_size < 1 || h.rank < 0 || h.rank >= h.world_size)
    return DataLoss(label + ": rank " + std::to_string(h.rank) + " of world size " + std::to_string(h.world_size) +
                    " in the shard header is impossible");
  if (h.data_offset != kShardDataOffset)
    return DataLoss(label + ": data offset " + std::to_string(h.data_offset) + ", expected " +
                    std::to_string(kShardDataOffset));
  if (Take<uint32_t>(bytes + 52) != 0) return DataLoss(label + ": reserved shard header bytes are not zero");
  return h;
}

}  // namespace zt::ckpt
