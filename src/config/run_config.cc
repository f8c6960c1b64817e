// run.json parsing and validation (DeepSpeed-compatible keys plus ztrain's "model", "data" and
// "run" sections); docs/config.md is the reference. Invariant: ParseRunConfig returns either a
// complete, consistent RunConfig or an InvalidArgument that names the offending dotted key and the
// source label; it never throws and never touches the file system.
#include "config/run_config.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "config/json_reader.h"

namespace zt::config {

using internal::KnownSection;
using internal::kMaxI64;
using internal::ObjectReader;
using internal::UnsupportedKey;
using nlohmann::json;

namespace {

// ---- The schema: which keys each section takes. ----
constexpr std::string_view kTopKeys[] = {
    "train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
    "bf16", "fp16", "gradient_clipping", "zero_optimization", "optimizer", "scheduler",
    "steps_per_print", "wall_clock_breakdown", "model", "data", "run", "checkpoint"};
constexpr std::string_view kBf16Keys[] = {"enabled"};
constexpr std::string_view kFp16Keys[] = {
    "enabled", "auto_cast", "loss_scale", "initial_scale_power", "loss_scale_window",
    "hysteresis", "min_loss_scale", "consecutive_hysteresis"};
constexpr std::string_view kZeroKeys[] = {
    "stage", "reduce_bucket_size", "allgather_bucket_size", "overlap_comm", "contiguous_gradients",
    "stage3_prefetch_bucket_size", "stage3_param_persistence_threshold", "gather_unit"};
constexpr std::string_view kOptimizerKeys[] = {"type", "params"};
constexpr std::string_view kAdamWParams[] = {"lr", "betas", "eps", "weight_decay"};
constexpr std::string_view kAdamParams[] = {"lr", "betas", "eps", "weight_decay", "adam_w_mode"};
constexpr std::string_view kSchedulerKeys[] = {"type", "params"};
constexpr std::string_view kWarmupLRParams[] = {
    "warmup_min_lr", "warmup_max_lr", "warmup_num_steps", "warmup_type"};
constexpr std::string_view kWarmupDecayLRParams[] = {
    "warmup_min_lr", "warmup_max_lr", "warmup_num_steps", "warmup_type", "total_num_steps"};
constexpr std::string_view kWarmupCosineLRParams[] = {
    "total_num_steps", "warmup_min_ratio", "cos_min_ratio", "warmup_num_steps", "warmup_type"};
constexpr std::string_view kAllSchedulerParams[] = {
    "warmup_min_lr", "warmup_max_lr", "warmup_num_steps", "warmup_type", "total_num_steps",
    "warmup_min_ratio", "cos_min_ratio"};
constexpr std::string_view kModelKeys[] = {"config", "weights"};
constexpr std::string_view kDataKeys[] = {"train", "eval", "seq_len"};
constexpr std::string_view kRunKeys[] = {"steps", "seed", "output_dir", "eval_interval", "eval_batches"};
constexpr std::string_view kCheckpointKeys[] = {"dir",        "interval", "tiers",     "keep_last", "max_in_flight",
                                                "io_threads", "chunk_mb", "direct_io", "resume"};

constexpr KnownSection kKnown[] = {
    {"", kTopKeys},
    {"bf16", kBf16Keys},
    {"fp16", kFp16Keys},
    {"zero_optimization", kZeroKeys},
    {"optimizer", kOptimizerKeys},
    {"optimizer.params", kAdamParams},
    {"scheduler", kSchedulerKeys},
    {"scheduler.params", kAllSchedulerParams},
    {"model", kModelKeys},
    {"data", kDataKeys},
    {"run", kRunKeys},
    {"checkpoint", kCheckpointKeys},
};

// DeepSpeed keys that ztrain recognises but does not implement (a clearer error than "unknown").
constexpr UnsupportedKey kUnsupportedTop[] = {
    {"bfloat16", "write it as \"bf16\": {\"enabled\": true}"},
    {"amp", "use \"bf16\" or \"fp16\""},
    {"activation_checkpointing", "recomputation is chosen by ztrain's passes; remove it"},
    {"flops_profiler", "ztrain reports TFLOP/s and MFU in its metrics; remove it"},
    {"tensorboard", "ztrain writes metrics.jsonl to run.output_dir; remove it"},
    {"wandb", "ztrain writes metrics.jsonl to run.output_dir; remove it"},
    {"csv_monitor", "ztrain writes metrics.jsonl to run.output_dir; remove it"},
    {"comms_logger", ""},
    {"prescale_gradients", ""},
    {"gradient_predivide_factor", ""},
    {"sparse_gradients", ""},
    {"zero_allow_untested_optimizer", ""},
    {"zero_force_ds_cpu_optimizer", ""},
    {"communication_data_type", ""},
    {"compression_training", ""},
    {"data_efficiency", ""},
    {"curriculum_learning", ""},
    {"elasticity", ""},
    {"autotuning", ""},
    {"checkpoint", ""},
    {"aio", ""},
    {"pipeline", ""},
    {"sparse_attention", ""},
    {"memory_breakdown", ""},
    {"dump_state", ""},
};
constexpr UnsupportedKey kUnsupportedZero[] = {
    {"offload_optimizer", "optimizer-state offload is planned by ztrain's passes; remove it"},
    {"offload_param", ""},
    {"cpu_offload", ""},
    {"reduce_scatter", ""},
    {"allgather_partitions", ""},
    {"sub_group_size", ""},
    {"stage3_max_live_parameters", ""},
    {"stage3_max_reuse_distance", ""},
    {"stage3_gather_16bit_weights_on_model_save", ""},
    {"stage3_gather_fp16_weights_on_model_save", ""},
    {"round_robin_gradients", ""},
    {"load_from_fp32_weights", ""},
    {"elastic_checkpoint", ""},
    {"ignore_unused_parameters", ""},
    {"legacy_stage1", ""},
    {"zero_hpz_partition_size", ""},
    {"zero_quantized_weights", ""},
    {"zero_quantized_gradients", ""},
    {"mics_shard_size", ""},
};

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string JoinList(std::span<const std::string_view> keys) {
  std::string out;
  for (size_t i = 0; i < keys.size(); ++i) out += (i > 0 ? ", " : "") + std::string(keys[i]);
  return out;
}

std::string ResolvePath(const std::string& base_dir, const std::string& p) {
  std::filesystem::path path(p);
  if (path.is_absolute() || base_dir.empty()) return p;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

// ---- Batch sizes (DeepSpeed's rule: any two of the three determine the third). ----
Status ParseBatchSizes(const ObjectReader& top, int world, RunConfig* c) {
  int64_t tb = 0, mb = 0, ga = 0;
  ZT_RETURN_IF_ERROR(top.Int("train_batch_size", &tb, 1));
  ZT_RETURN_IF_ERROR(top.Int("train_micro_batch_size_per_gpu", &mb, 1));
  ZT_RETURN_IF_ERROR(top.Int("gradient_accumulation_steps", &ga, 1));
  const bool has_tb = top.Has("train_batch_size"), has_mb = top.Has("train_micro_batch_size_per_gpu"),
             has_ga = top.Has("gradient_accumulation_steps");
  const std::string& label = top.label();
  const std::string w = std::to_string(world);
  auto too_large = [&] {
    return InvalidArgument("batch sizes in " + label + " are too large: their product overflows 64 bits");
  };
  auto mul = [](int64_t a, int64_t b, int64_t* out) { return !__builtin_mul_overflow(a, b, out); };

  if (has_tb && has_mb && has_ga) {
    int64_t mw = 0, product = 0;
    if (!mul(mb, ga, &mw) || !mul(mw, world, &product)) return too_large();
    if (product != tb) {
      return InvalidArgument(
          "batch sizes in " + label + " do not agree: train_batch_size (" + std::to_string(tb) +
          ") must equal train_micro_batch_size_per_gpu (" + std::to_string(mb) +
          ") * gradient_accumulation_steps (" + std::to_string(ga) + ") * world_size (" + w +
          ") = " + std::to_string(product) + "; fix one of them, or leave one out and it is derived");
    }
  } else if (has_tb && has_mb) {
    int64_t per_step = 0;
    if (!mul(mb, world, &per_step)) return too_large();
    if (tb % per_step != 0) {
      return InvalidArgument(
          "batch sizes in " + label + " do not divide: gradient_accumulation_steps = train_batch_size (" +
          std::to_string(tb) + ") / (train_micro_batch_size_per_gpu (" + std::to_string(mb) +
          ") * world_size (" + w + ")) is not a whole number; make train_batch_size a multiple of " +
          std::to_string(per_step));
    }
    ga = tb / per_step;
  } else if (has_tb && has_ga) {
    int64_t per_micro = 0;
    if (!mul(ga, world, &per_micro)) return too_large();
    if (tb % per_micro != 0) {
      return InvalidArgument(
          "batch sizes in " + label + " do not divide: train_micro_batch_size_per_gpu = train_batch_size (" +
          std::to_string(tb) + ") / (gradient_accumulation_steps (" + std::to_string(ga) +
          ") * world_size (" + w + ")) is not a whole number; make train_batch_size a multiple of " +
          std::to_string(per_micro));
    }
    mb = tb / per_micro;
  } else if (has_mb && has_ga) {
    int64_t mw = 0;
    if (!mul(mb, ga, &mw) || !mul(mw, world, &tb)) return too_large();
  } else if (has_tb) {
    if (tb % world != 0) {
      return InvalidArgument("batch sizes in " + label + " do not divide: train_batch_size (" +
                             std::to_string(tb) + ") is not a multiple of world_size (" + w +
                             "); fix it or give train_micro_batch_size_per_gpu instead");
    }
    mb = tb / world;
    ga = 1;
  } else if (has_mb) {
    ga = 1;
    if (!mul(mb, world, &tb)) return too_large();
  } else {
    return InvalidArgument(
        label + " gives no batch size: set \"train_micro_batch_size_per_gpu\" (samples per GPU per "
        "micro-step) and/or \"train_batch_size\" (samples per optimizer step over all GPUs)" +
        std::string(has_ga ? "; \"gradient_accumulation_steps\" alone is not enough" : ""));
  }
  c->train_batch_size = tb;
  c->micro_batch_size = mb;
  c->gradient_accumulation_steps = ga;
  return OkStatus();
}

// ---- bf16 / fp16. ----
Status ParsePrecision(const ObjectReader& top, RunConfig* c) {
  ZT_ASSIGN_OR_RETURN(ObjectReader bf16, top.Object("bf16"));
  ZT_RETURN_IF_ERROR(bf16.CheckKeys(kBf16Keys));
  bool bf16_on = false;
  ZT_RETURN_IF_ERROR(bf16.Bool("enabled", &bf16_on));

  ZT_ASSIGN_OR_RETURN(ObjectReader fp16, top.Object("fp16"));
  ZT_RETURN_IF_ERROR(fp16.CheckKeys(kFp16Keys));
  bool fp16_on = false, auto_cast = false;
  ZT_RETURN_IF_ERROR(fp16.Bool("enabled", &fp16_on));
  ZT_RETURN_IF_ERROR(fp16.Bool("auto_cast", &auto_cast));
  if (auto_cast) {
    return fp16.Error("auto_cast", "is true, which ztrain does not support (the model graph decides "
                                   "each op's dtype); set it to false or remove it");
  }
  Fp16Options& o = c->fp16;
  ZT_RETURN_IF_ERROR(fp16.Number("loss_scale", &o.loss_scale, 0, HUGE_VAL));
  ZT_RETURN_IF_ERROR(fp16.Int("initial_scale_power", &o.initial_scale_power, 0, 64));
  ZT_RETURN_IF_ERROR(fp16.Int("loss_scale_window", &o.loss_scale_window, 1));
  ZT_RETURN_IF_ERROR(fp16.Int("hysteresis", &o.hysteresis, 1, 1 << 30));
  ZT_RETURN_IF_ERROR(fp16.Number("min_loss_scale", &o.min_loss_scale, 0, HUGE_VAL, /*min_exclusive=*/true));
  ZT_RETURN_IF_ERROR(fp16.Bool("consecutive_hysteresis", &o.consecutive_hysteresis));

  if (bf16_on && fp16_on) {
    return InvalidArgument("\"bf16.enabled\" and \"fp16.enabled\" are both true in " + top.label() +
                           "; enable at most one of them");
  }
  c->precision = bf16_on ? Precision::kBF16 : fp16_on ? Precision::kF16 : Precision::kF32;
  return OkStatus();
}

// ---- zero_optimization. ----
Status ParseZero(const ObjectReader& top, RunConfig* c) {
  ZT_ASSIGN_OR_RETURN(ObjectReader z, top.Object("zero_optimization"));
  ZT_RETURN_IF_ERROR(z.CheckKeys(kZeroKeys, kUnsupportedZero));
  ZT_RETURN_IF_ERROR(z.Int("stage", &c->zero_stage, 0, 3));
  ZeroOptions& o = c->zero;
  o.overlap_comm = c->zero_stage == 3;  // DeepSpeed's default when the key is absent
  ZT_RETURN_IF_ERROR(z.Int("reduce_bucket_size", &o.reduce_bucket_size, 1));
  ZT_RETURN_IF_ERROR(z.Int("allgather_bucket_size", &o.allgather_bucket_size, 1));
  ZT_RETURN_IF_ERROR(z.Bool("overlap_comm", &o.overlap_comm));
  ZT_RETURN_IF_ERROR(z.Bool("contiguous_gradients", &o.contiguous_gradients));
  ZT_RETURN_IF_ERROR(z.Int("stage3_prefetch_bucket_size", &o.stage3_prefetch_bucket_size, 0));
  ZT_RETURN_IF_ERROR(z.Int("stage3_param_persistence_threshold", &o.stage3_param_persistence_threshold, 0));
  ZT_RETURN_IF_ERROR(z.String("gather_unit", &o.gather_unit));
  if (o.gather_unit != "block" && o.gather_unit != "param") {
    return InvalidArgument("\"zero_optimization.gather_unit\" in " + top.label() + " must be \"block\" or \"param\", is \"" +
                           o.gather_unit + "\"");
  }
  return OkStatus();
}

// ---- optimizer. ----
Status ParseBetas(const ObjectReader& params, OptimizerOptions* o) {
  if (!params.Has("betas")) return OkStatus();
  const json& b = params.value().at("betas");
  if (!b.is_array() || b.size() != 2) {
    return params.Error("betas", "must be an array of two numbers [beta1, beta2], got " +
                                     internal::DescribeJson(b) +
                                     (b.is_array() ? " of length " + std::to_string(b.size()) : ""));
  }
  double* outs[2] = {&o->beta1, &o->beta2};
  for (int i = 0; i < 2; ++i) {
    const json& v = b[i];
    if (!v.is_number() || !(v.get<double>() >= 0 && v.get<double>() < 1)) {
      return params.Error("betas[" + std::to_string(i) + "]",
                          "must be a number in [0, 1), got " + internal::DescribeJson(v));
    }
    *outs[i] = v.get<double>();
  }
  return OkStatus();
}

Status ParseOptimizer(const ObjectReader& top, RunConfig* c) {
  ZT_ASSIGN_OR_RETURN(ObjectReader opt, top.Object("optimizer"));
  ZT_RETURN_IF_ERROR(opt.CheckKeys(kOptimizerKeys));
  OptimizerOptions& o = c->optimizer;
  o.weight_decay = 0;  // DeepSpeed's default: its Adam and AdamW take no weight decay unless told
  if (!top.Has("optimizer")) return OkStatus();  // AdamW with the defaults
  ZT_RETURN_IF_ERROR(opt.Require("type", "the optimizer, \"AdamW\" or \"Adam\""));
  std::string type;
  ZT_RETURN_IF_ERROR(opt.String("type", &type));
  std::string lower = type;
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower == "adamw") {
    o.type = "AdamW";
  } else if (lower == "adam") {
    o.type = "Adam";
  } else {
    return opt.Error("type", "is " + Quoted(type) + ", which ztrain does not support; use \"AdamW\" or "
                             "\"Adam\" (both with decoupled weight decay)");
  }
  ZT_ASSIGN_OR_RETURN(ObjectReader params, opt.Object("params"));
  const bool adam = o.type == "Adam";
  if (!adam && params.Has("adam_w_mode")) {
    return params.Error("adam_w_mode", "applies only to optimizer type \"Adam\" (AdamW always decouples "
                                       "weight decay); remove it");
  }
  ZT_RETURN_IF_ERROR(params.CheckKeys(adam ? std::span<const std::string_view>(kAdamParams)
                                           : std::span<const std::string_view>(kAdamWParams)));
  ZT_RETURN_IF_ERROR(params.Number("lr", &o.lr, 0, HUGE_VAL));
  ZT_RETURN_IF_ERROR(ParseBetas(params, &o));
  ZT_RETURN_IF_ERROR(params.Number("eps", &o.eps, 0, HUGE_VAL, /*min_exclusive=*/true));
  ZT_RETURN_IF_ERROR(params.Number("weight_decay", &o.weight_decay, 0, HUGE_VAL));
  bool adam_w_mode = true;
  ZT_RETURN_IF_ERROR(params.Bool("adam_w_mode", &adam_w_mode));
  if (!adam_w_mode) {
    return params.Error("adam_w_mode", "is false, but ztrain's Adam always decouples weight decay "
                                       "(AdamW); set it to true or remove it (with weight_decay 0 "
                                       "the two are the same)");
  }
  return OkStatus();
}

// ---- scheduler. ----
Status ParseScheduler(const ObjectReader& top, RunConfig* c) {
  ZT_ASSIGN_OR_RETURN(ObjectReader sched, top.Object("scheduler"));
  ZT_RETURN_IF_ERROR(sched.CheckKeys(kSchedulerKeys));
  SchedulerOptions& s = c->scheduler;
  s.warmup_max_lr = c->optimizer.lr;  // the peak is the optimizer's lr unless told otherwise
  if (!top.Has("scheduler")) return OkStatus();  // constant lr
  ZT_RETURN_IF_ERROR(sched.Require("type", "\"WarmupLR\", \"WarmupDecayLR\" or \"WarmupCosineLR\""));
  ZT_RETURN_IF_ERROR(sched.String("type", &s.type));
  std::span<const std::string_view> allowed;
  if (s.type == "WarmupLR") {
    allowed = kWarmupLRParams;
  } else if (s.type == "WarmupDecayLR") {
    allowed = kWarmupDecayLRParams;
  } else if (s.type == "WarmupCosineLR") {
    allowed = kWarmupCosineLRParams;
  } else {
    std::string hint;
    for (std::string_view t : {"WarmupLR", "WarmupDecayLR", "WarmupCosineLR"}) {
      if (internal::EditDistance(s.type, t) <= 2) hint = "; did you mean " + Quoted(t) + "?";
    }
    return sched.Error("type", "is " + Quoted(s.type) + ", which ztrain does not support; use "
                               "\"WarmupLR\", \"WarmupDecayLR\" or \"WarmupCosineLR\"" + hint);
  }
  ZT_ASSIGN_OR_RETURN(ObjectReader params, sched.Object("params"));
  // A parameter of another scheduler type gets its own message before the generic check.
  for (const auto& [key, value] : params.value().items()) {
    bool here = std::find(allowed.begin(), allowed.end(), key) != allowed.end();
    bool elsewhere = std::find(std::begin(kAllSchedulerParams), std::end(kAllSchedulerParams), key) !=
                     std::end(kAllSchedulerParams);
    if (!here && elsewhere) {
      return params.Error(key, "is not a parameter of scheduler type " + Quoted(s.type) + ", which takes: " +
                                   JoinList(allowed));
    }
  }
  ZT_RETURN_IF_ERROR(params.CheckKeys(allowed));

  ZT_RETURN_IF_ERROR(params.Number("warmup_min_lr", &s.warmup_min_lr, 0, HUGE_VAL));
  ZT_RETURN_IF_ERROR(params.Number("warmup_max_lr", &s.warmup_max_lr, 0, HUGE_VAL));
  ZT_RETURN_IF_ERROR(params.Int("warmup_num_steps", &s.warmup_num_steps, 0));
  ZT_RETURN_IF_ERROR(params.String("warmup_type", &s.warmup_type));
  if (s.warmup_type != "log" && s.warmup_type != "linear") {
    return params.Error("warmup_type", "must be \"log\" or \"linear\", got " + Quoted(s.warmup_type));
  }
  ZT_RETURN_IF_ERROR(params.Int("total_num_steps", &s.total_num_steps, 1));
  ZT_RETURN_IF_ERROR(params.Number("warmup_min_ratio", &s.warmup_min_ratio, 0, 1));
  ZT_RETURN_IF_ERROR(params.Number("cos_min_ratio", &s.cos_min_ratio, 0, 1));

  if (s.type != "WarmupCosineLR" && s.warmup_min_lr > s.warmup_max_lr) {
    std::ostringstream msg;
    msg << "(" << s.warmup_min_lr << ") is above the peak learning rate "
        << (params.Has("warmup_max_lr") ? "scheduler.params.warmup_max_lr" : "optimizer.params.lr")
        << " (" << s.warmup_max_lr << "); lower it";
    return params.Error("warmup_min_lr", msg.str());
  }
  if (s.type != "WarmupLR") {
    ZT_RETURN_IF_ERROR(params.Require("total_num_steps", "scheduler " + s.type +
                                                             " needs the number of steps it spans "
                                                             "(usually run.steps)"));
    if (s.total_num_steps <= s.warmup_num_steps) {
      return params.Error("total_num_steps",
                          "(" + std::to_string(s.total_num_steps) +
                              ") must be greater than scheduler.params.warmup_num_steps (" +
                              std::to_string(s.warmup_num_steps) +
                              (params.Has("warmup_num_steps") ? "" : ", the default") + ")");
    }
  }
  return OkStatus();
}

// ---- ztrain's sections. ----
Status ParseModelDataRun(const ObjectReader& top, const std::string& base_dir, RunConfig* c) {
  ZT_RETURN_IF_ERROR(top.Require("model", "the model section, {\"config\": \"<HF config.json>\"}"));
  ZT_ASSIGN_OR_RETURN(ObjectReader model, top.Object("model"));
  ZT_RETURN_IF_ERROR(model.CheckKeys(kModelKeys));
  ZT_RETURN_IF_ERROR(model.Require("config", "the path of the model's Hugging Face config.json"));
  ZT_RETURN_IF_ERROR(model.String("config", &c->model.config));
  ZT_RETURN_IF_ERROR(model.String("weights", &c->model.weights));
  c->model.config = ResolvePath(base_dir, c->model.config);
  if (!c->model.weights.empty()) c->model.weights = ResolvePath(base_dir, c->model.weights);

  ZT_RETURN_IF_ERROR(top.Require("data", "the data section, {\"train\": \"<token file>\", \"seq_len\": N}"));
  ZT_ASSIGN_OR_RETURN(ObjectReader data, top.Object("data"));
  ZT_RETURN_IF_ERROR(data.CheckKeys(kDataKeys));
  ZT_RETURN_IF_ERROR(data.Require("train", "the path of the training token file"));
  ZT_RETURN_IF_ERROR(data.Require("seq_len", "tokens per training sample (a positive integer)"));
  ZT_RETURN_IF_ERROR(data.String("train", &c->data.train));
  ZT_RETURN_IF_ERROR(data.String("eval", &c->data.eval));
  ZT_RETURN_IF_ERROR(data.Int("seq_len", &c->data.seq_len, 1));
  c->data.train = ResolvePath(base_dir, c->data.train);
  if (!c->data.eval.empty()) c->data.eval = ResolvePath(base_dir, c->data.eval);

  ZT_RETURN_IF_ERROR(top.Require("run", "the run section, {\"steps\": N, \"output_dir\": \"<dir>\"}"));
  ZT_ASSIGN_OR_RETURN(ObjectReader run, top.Object("run"));
  ZT_RETURN_IF_ERROR(run.CheckKeys(kRunKeys));
  ZT_RETURN_IF_ERROR(run.Require("steps", "the number of optimizer steps (a positive integer)"));
  ZT_RETURN_IF_ERROR(run.Require("output_dir", "the directory for metrics and exports"));
  ZT_RETURN_IF_ERROR(run.Int("steps", &c->run.steps, 1));
  ZT_RETURN_IF_ERROR(run.Uint64("seed", &c->run.seed));
  ZT_RETURN_IF_ERROR(run.String("output_dir", &c->run.output_dir));
  ZT_RETURN_IF_ERROR(run.Int("eval_interval", &c->run.eval_interval, 0));
  ZT_RETURN_IF_ERROR(run.Int("eval_batches", &c->run.eval_batches, 1));
  c->run.output_dir = ResolvePath(base_dir, c->run.output_dir);
  if (c->run.eval_interval > 0 && c->data.eval.empty()) {
    return run.Error("eval_interval", "is " + std::to_string(c->run.eval_interval) +
                                          " but \"data.eval\" is not given; add an eval token file or "
                                          "set run.eval_interval to 0");
  }
  return OkStatus();
}

Status ParseCheckpoint(const ObjectReader& top, const std::string& base_dir, RunConfig* c) {
  CheckpointSection& k = c->checkpoint;
  k.dir = c->run.output_dir + "/checkpoints";
  if (!top.Has("checkpoint")) return OkStatus();
  ZT_ASSIGN_OR_RETURN(ObjectReader r, top.Object("checkpoint"));
  ZT_RETURN_IF_ERROR(r.CheckKeys(kCheckpointKeys));
  if (r.Has("dir")) {
    ZT_RETURN_IF_ERROR(r.String("dir", &k.dir));
    k.dir = ResolvePath(base_dir, k.dir);
  }
  ZT_RETURN_IF_ERROR(r.Int("interval", &k.interval, 0));
  if (r.Has("tiers")) {
    const json& t = r.value()["tiers"];
    if (!t.is_array() || t.empty()) return r.Error("tiers", "must be a non-empty list of \"host\" and/or \"disk\"");
    k.host_tier = k.disk_tier = false;
    for (const json& e : t) {
      if (e == "host") k.host_tier = true;
      else if (e == "disk") k.disk_tier = true;
      else return r.Error("tiers", "has " + e.dump() + "; the tiers are \"host\" (shared memory) and \"disk\"");
    }
  }
  ZT_RETURN_IF_ERROR(r.Int("keep_last", &k.keep_last, 0, 1000000));
  ZT_RETURN_IF_ERROR(r.Int("max_in_flight", &k.max_in_flight, 1, 64));
  ZT_RETURN_IF_ERROR(r.Int("io_threads", &k.io_threads, 1, 256));
  int64_t chunk_mb = k.chunk_bytes >> 20;
  ZT_RETURN_IF_ERROR(r.Int("chunk_mb", &chunk_mb, 1, 4096));
  k.chunk_bytes = chunk_mb << 20;
  ZT_RETURN_IF_ERROR(r.Bool("direct_io", &k.direct_io));
  std::string resume = "auto";
  ZT_RETURN_IF_ERROR(r.String("resume", &resume));
  if (resume != "auto" && resume != "never")
    return r.Error("resume", "is \"" + resume + "\"; use \"auto\" (continue from the newest checkpoint) or \"never\"");
  k.resume = resume == "auto";
  return OkStatus();
}

// Records the first key that appears twice in one object while nlohmann parses.
class DuplicateKeyFinder {
 public:
  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: frames_.push_back({}); break;
      case json::parse_event_t::object_end:
        if (!frames_.empty()) frames_.pop_back();
        break;
      case json::parse_event_t::key: {
        if (frames_.empty()) break;
        std::string key = parsed.get<std::string>();
        if (!frames_.back().keys.insert(key).second && first_.empty()) {
          for (size_t i = 0; i + 1 < frames_.size(); ++i) first_ += frames_[i].current + ".";
          first_ += key;
        }
        frames_.back().current = key;
        break;
      }
      default: break;
    }
    return true;
  }
  const std::string& first() const { return first_; }

 private:
  struct Frame {
    std::set<std::string> keys;
    std::string current;
  };
  std::vector<Frame> frames_;
  std::string first_;
};

}  // namespace

const char* PrecisionName(Precision p) {
  switch (p) {
    case Precision::kF32: return "fp32";
    case Precision::kBF16: return "bf16";
    case Precision::kF16: return "fp16";
  }
  return "?";
}

StatusOr<RunConfig> ParseRunConfig(const json& j, int world_size, const std::string& label,
                                   const std::string& base_dir) {
  if (!j.is_object()) {
    return InvalidArgument(label + ": a run config must be a JSON object ({...}), got " + internal::DescribeJson(j));
  }
  if (world_size < 1) {
    return InvalidArgument("world_size for " + label + " must be >= 1, got " + std::to_string(world_size) +
                           "; check the launcher's rank/world environment");
  }
  RunConfig c;
  c.world_size = world_size;
  ObjectReader top(j, "", label, kKnown);
  ZT_RETURN_IF_ERROR(top.CheckKeys(kTopKeys, kUnsupportedTop));
  ZT_RETURN_IF_ERROR(ParseBatchSizes(top, world_size, &c));
  ZT_RETURN_IF_ERROR(ParsePrecision(top, &c));
  ZT_RETURN_IF_ERROR(top.Number("gradient_clipping", &c.gradient_clipping, 0, HUGE_VAL));
  ZT_RETURN_IF_ERROR(ParseZero(top, &c));
  ZT_RETURN_IF_ERROR(ParseOptimizer(top, &c));
  ZT_RETURN_IF_ERROR(ParseScheduler(top, &c));
  ZT_RETURN_IF_ERROR(top.Int("steps_per_print", &c.steps_per_print, 1));
  ZT_RETURN_IF_ERROR(top.Bool("wall_clock_breakdown", &c.wall_clock_breakdown));
  ZT_RETURN_IF_ERROR(ParseModelDataRun(top, base_dir, &c));
  ZT_RETURN_IF_ERROR(ParseCheckpoint(top, base_dir, &c));
  c.raw = j;
  return c;
}

StatusOr<RunConfig> LoadRunConfig(const std::string& path, int world_size) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgument("run config " + path + " is a directory; give the path of a run.json file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    std::string msg = "cannot read run config " + path + ": " + std::strerror(err);
    if (err == ENOENT) return NotFound(msg + "; check the path");
    if (err == EACCES) return PermissionDenied(msg + "; check the file's permissions");
    return InvalidArgument(msg);
  }
  std::stringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return InvalidArgument("cannot read run config " + path + ": read error");
  const std::string text = buf.str();

  DuplicateKeyFinder dups;
  json j;
  try {
    j = json::parse(text, std::ref(dups));
  } catch (const json::exception& e) {
    std::string what = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix; keep its line/column.
    if (size_t close = what.find("] "); what.rfind("[json.exception", 0) == 0 && close != std::string::npos) {
      what = what.substr(close + 2);
    }
    return InvalidArgument(path + " is not valid JSON: " + what +
                           " (JSON allows no comments and no trailing commas)");
  }
  if (!dups.first().empty()) {
    return InvalidArgument("key " + Quoted(dups.first()) + " appears twice in " + path + "; keep one");
  }
  std::string base_dir = std::filesystem::path(path).parent_path().string();
  return ParseRunConfig(j, world_size, path, base_dir);
}

}  // namespace zt::config
