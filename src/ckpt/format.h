// The on-disk layout of a checkpoint directory (docs/checkpoint-format.md):
//   <dir>/LATEST                          "step-000000000123\n": the committed checkpoint
//   <dir>/step-<12 digits>/manifest.json  the Manifest (manifest.h)
//   <dir>/step-<12 digits>/rank-<5 digits>.shard
// A shard file: a 64-byte header (ShardHeader, little-endian, with its own xxh64), zeros up to
// byte 4096, then the rank's snapshot bytes (each section at 4096 + its snapshot offset), then
// zeros up to a multiple of 4096 (so direct I/O can write every block whole).
// Invariant: DecodeShardHeader accepts exactly what EncodeShardHeader writes; any other 64 bytes
// are a DataLoss error that names the file and the field.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "core/status.h"

namespace zt::ckpt {

inline constexpr const char* kLatestName = "LATEST";
inline constexpr const char* kManifestName = "manifest.json";
inline constexpr const char* kTmpSuffix = ".tmp";
inline constexpr uint32_t kShardVersion = 1;
inline constexpr uint64_t kShardHeaderBytes = 64;
inline constexpr uint64_t kShardDataOffset = 4096;
inline constexpr uint64_t kShardAlignment = 4096;

std::string StepDirName(int64_t step);                              // "step-000000000123"
std::optional<int64_t> ParseStepDirName(const std::string& name);   // exactly that form
std::string ShardFileName(int rank);                                // "rank-00003.shard"
// LATEST's text for a checkpoint name ("step-...\n"), and back: the name when `text` is exactly
// a step directory name and one newline, else nullopt.
std::string LatestText(const std::string& name);
std::optional<std::string> ParseLatestText(const std::string& text);

struct ShardHeader {
  uint32_t version = kShardVersion;
  int64_t step = 0;
  int32_t rank = 0;
  int32_t world_size = 1;
  uint64_t data_offset = kShardDataOffset;
  uint64_t data_bytes = 0;  // the snapshot's bytes, before the padding
  uint32_t num_sections = 0;
};

std::array<char, kShardHeaderBytes> EncodeShardHeader(const ShardHeader& h);
// `label` names the file in errors.
StatusOr<ShardHeader> DecodeShardHeader(const char* bytes, size_t n, const std::string& label);

inline uint64_t AlignUp(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }
// The size of a shard file holding `data_bytes` snapshot bytes.
inline uint64_t ShardFileBytes(uint64_t data_bytes) { return kShardDataOffset + AlignUp(data_bytes, kShardAlignment); }

}  // namespace zt::ckpt
