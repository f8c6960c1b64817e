// RunConfig: everything a training run is told, parsed from a DeepSpeed-style run.json. Keys
// follow DeepSpeed where DeepSpeed has them (train_batch_size, train_micro_batch_size_per_gpu,
// gradient_accumulation_steps, bf16, fp16, gradient_clipping, optimizer, scheduler,
// zero_optimization, steps_per_print, wall_clock_breakdown) plus ztrain's own sections "model",
// "data" and "run". Invariant: a RunConfig returned by ParseRunConfig is complete and consistent
// (batch sizes multiply out, at most one of bf16/fp16, known optimizer and scheduler types); an
// unknown key or a contradiction is an error that names the key (e.g. "fp16.loss_scale_window").
// docs/config.md is the reference of every key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace zt::config {

enum class Precision { kF32, kBF16, kF16 };
const char* PrecisionName(Precision p);  // "fp32", "bf16", "fp16"

// DeepSpeed's fp16 section (dynamic loss scaling when loss_scale == 0).
struct Fp16Options {
  double loss_scale = 0;          // 0: dynamic; > 0: static scale
  int initial_scale_power = 16;   // dynamic: initial scale 2^power
  int64_t loss_scale_window = 1000;
  int hysteresis = 2;
  double min_loss_scale = 1;
  bool consecutive_hysteresis = false;
};

struct OptimizerOptions {
  std::string type = "AdamW";  // "AdamW" or "Adam" (decoupled weight decay, as DeepSpeed's adam_w_mode)
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // DeepSpeed's default
};

// DeepSpeed scheduler types: "WarmupLR", "WarmupDecayLR", "WarmupCosineLR"; empty: constant lr.
struct SchedulerOptions {
  std::string type;
  double warmup_min_lr = 0;       // WarmupLR / WarmupDecayLR
  double warmup_max_lr = 1e-3;    // WarmupLR / WarmupDecayLR (default: optimizer lr)
  int64_t warmup_num_steps = 1000;
  std::string warmup_type = "log";  // "log" or "linear"
  int64_t total_num_steps = 0;    // WarmupDecayLR / WarmupCosineLR
  double warmup_min_ratio = 0;    // WarmupCosineLR
  double cos_min_ratio = 1e-4;    // WarmupCosineLR
};

// DeepSpeed's zero_optimization section beyond "stage" (which is RunConfig::zero_stage). Sizes are
// in elements, as in DeepSpeed.
struct ZeroOptions {
  int64_t reduce_bucket_size = 500000000;      // > 0: gradient elements per reduce(-scatter) bucket
  int64_t allgather_bucket_size = 500000000;   // > 0: parameter elements per all-gather bucket
  bool overlap_comm = false;                   // default: true at stage 3, false below (DeepSpeed)
  bool contiguous_gradients = true;            // gradients copied into one buffer as produced
  int64_t stage3_prefetch_bucket_size = 50000000;      // >= 0: elements fetched ahead (stage 3)
  int64_t stage3_param_persistence_threshold = 100000; // >= 0: smaller parameters stay unsharded
  // ztrain's own key: what one ZeRO all-gather / reduce-scatter unit holds: "block" (the
  // parameters of one transformer block, split at reduce_bucket_size) or "param" (one parameter).
  std::string gather_unit = "block";
};

struct ModelSection {
  std::string config;   // path to a Hugging Face config.json (relative paths: to the run.json)
  std::string weights;  // optional: safetensors file or directory to start from
};

struct DataSection {
  std::string train;    // token file (docs/data.md)
  std::string eval;     // optional held-out token file
  int64_t seq_len = 0;  // tokens per sample
};

struct RunSection {
  int64_t steps = 0;          // optimizer steps
  uint64_t seed = 0;
  std::string output_dir;     // metrics.jsonl and exports go here (relative: to the run.json)
  int64_t eval_interval = 0;  // steps between evaluations; 0: never
  int64_t eval_batches = 8;   // micro-batches per evaluation
};

// "checkpoint" (ours): periodic checkpoints to the host-memory tier and/or disk, and resuming
// from the newest one (docs/checkpoint-format.md, docs/checkpoint-tiers.md).
struct CheckpointSection {
  std::string dir;             // checkpoint root (default <output_dir>/checkpoints)
  int64_t interval = 0;        // steps between checkpoints; 0: none (the last step is always saved when > 0)
  bool host_tier = true;       // "tiers" has "host": every checkpoint also to shared memory
  bool disk_tier = true;       // "tiers" has "disk": persisted to `dir`
  int keep_last = 2;           // committed checkpoints kept on disk (0: all)
  int max_in_flight = 2;       // C: disk checkpoints being written at once
  int io_threads = 4;          // chunk writers
  int64_t chunk_bytes = 8 << 20;
  bool direct_io = false;      // O_DIRECT writes
  bool resume = true;          // "resume": "auto" (newest checkpoint of the tiers) or "never"
  bool enabled() const { return interval > 0; }
};

struct RunConfig {
  int64_t train_batch_size = 0;
  int64_t micro_batch_size = 0;  // train_micro_batch_size_per_gpu
  int64_t gradient_accumulation_steps = 0;
  int world_size = 1;            // from the launcher; used for the batch-size consistency check
  Precision precision = Precision::kF32;
  Fp16Options fp16;
  double gradient_clipping = 0;  // 0: no clipping
  OptimizerOptions optimizer;
  SchedulerOptions scheduler;
  int zero_stage = 0;            // zero_optimization.stage, 0..3
  ZeroOptions zero;
  int64_t steps_per_print = 10;
  bool wall_clock_breakdown = false;
  ModelSection model;
  DataSection data;
  RunSection run;
  CheckpointSection checkpoint;
  nlohmann::json raw;  // the file as given, for records and checkpoints
};

// Parses and validates. `label` names the source in errors (usually the path); relative paths in
// "model", "data" and run.output_dir are resolved against `base_dir` (kept as given when empty);
// absolute paths are kept. Files are not opened here. `world_size` must be >= 1.
StatusOr<RunConfig> ParseRunConfig(const nlohmann::json& j, int world_size, const std::string& label,
                                   const std::string& base_dir);
// Reads and parses `path` (errors name it, with nlohmann's line/column for syntax errors; a key
// given twice in one object is an error); base_dir is the file's directory.
StatusOr<RunConfig> LoadRunConfig(const std::string& path, int world_size = 1);

}  // namespace zt::config
