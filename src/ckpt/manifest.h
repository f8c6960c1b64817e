// Manifest: what one committed checkpoint is. One per checkpoint directory, written by rank 0
// after every rank's shard is on disk, and made visible by the atomic rename of LATEST.
// Everything a bit-exact resume needs, and everything a resume on another world size needs to
// reshard (the unit layout), is here. JSON, format_version 1 (docs/checkpoint-format.md).
// Invariant: ParseManifest accepts exactly what ToJson writes; anything else (a missing key, a
// wrong type, an inconsistent size) is a DataLoss error naming the key and the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ckpt/snapshot.h"
#include "core/status.h"
#include "passes/zero.h"

namespace zt::ckpt {

inline constexpr int kFormatVersion = 1;
inline constexpr const char* kManifestFormat = "ztrain-checkpoint";  // the "format" key
inline constexpr int kMaxRanks = 100000;                                // rank-<5 digits>.shard

struct ShardInfo {
  int rank = 0;
  std::string file;                       // relative to the checkpoint directory
  uint64_t bytes = 0;                     // file size
  std::string checksum;                   // "xxh64:<16 hex digits>" of the whole file
  std::vector<SnapshotSection> sections;  // where each section lies in the file
};

struct ScalerInfo {
  double scale = 1;
  int64_t iter = 0;
  int64_t last_overflow_iter = -1;
  int hysteresis_left = 0;
};

struct Manifest {
  int format_version = kFormatVersion;
  int64_t step = 0;             // global steps taken
  int64_t applied_updates = 0;  // optimizer updates applied (bias correction, LR schedule)
  int world_size = 1;
  int zero_stage = 0;
  std::string precision;        // "fp32", "bf16", "fp16"
  passes::ZeroLayout layout;    // the unit layout the shards slice (world_size = this job's)
  std::vector<ShardInfo> shards;  // one per rank, in rank order
  ScalerInfo scaler;
  int64_t sampler_epoch = 0;
  int64_t sampler_position = 0;
  uint64_t seed = 0;            // the run's seed (no other RNG carries state across steps)
  nlohmann::json config;        // the run.json as given
  std::string created;          // ISO-8601 UTC time, informational
};

nlohmann::json ToJson(const Manifest& m);
StatusOr<Manifest> ParseManifest(const nlohmann::json& j, const std::string& label);
// The text of manifest.json (ToJson, indented), and its parse (invalid JSON is DataLoss).
std::string ManifestText(const Manifest& m);
// One entry of "shards" (also what a rank reports through the store before the commit).
nlohmann::json ShardToJson(const ShardInfo& s);
StatusOr<ShardInfo> ParseShardInfo(const nlohmann::json& j, int expected_rank, const std::string& label);
StatusOr<Manifest> ParseManifestText(const std::string& text, const std::string& label);

}  // namespace zt::ckpt
