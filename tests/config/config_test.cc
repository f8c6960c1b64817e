// run.json parsing (src/config). Invariants checked: a full config parses to exactly the values it
// gives and an absent key keeps its documented default; DeepSpeed's batch-size rule (any two of
// train_batch_size / micro batch / accumulation determine the third, all three must agree); every
// kind of bad input (unknown key at any depth, wrong type, out of range, contradiction, missing
// key, unreadable file, bad JSON) is an error that names the dotted key or the file; relative
// paths resolve against the run.json's directory; the shipped configs/tiny-run.json parses.
#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "config/json_reader.h"
#include "config/run_config.h"

namespace zt::config {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// The smallest valid config: a micro batch size and the three required ztrain sections.
json Base() {
  return json::parse(R"({
    "train_micro_batch_size_per_gpu": 4,
    "model": {"config": "model.json"},
    "data": {"train": "train.bin", "seq_len": 32},
    "run": {"steps": 10, "output_dir": "out"}
  })");
}

StatusOr<RunConfig> Parse(const json& j, int world = 1, const std::string& base_dir = "/base/cfg") {
  return ParseRunConfig(j, world, "run.json", base_dir);
}

// The error message of a config that must fail.
std::string Err(const json& j, int world = 1) {
  auto r = Parse(j, world);
  EXPECT_FALSE(r.ok()) << "expected an error for " << j.dump();
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  return r.status().message();
}

TEST(RunConfig, FullConfigParsesToEveryValue) {
  json j = json::parse(R"({
    "train_batch_size": 48,
    "train_micro_batch_size_per_gpu": 4,
    "gradient_accumulation_steps": 6,
    "fp16": {"enabled": true, "auto_cast": false, "loss_scale": 0, "initial_scale_power": 12,
             "loss_scale_window": 500, "hysteresis": 3, "min_loss_scale": 0.5,
             "consecutive_hysteresis": true},
    "bf16": {"enabled": false},
    "gradient_clipping": 0.5,
    "zero_optimization": {"stage": 2, "reduce_bucket_size": 2e8, "allgather_bucket_size": 300000000,
                          "overlap_comm": true, "contiguous_gradients": false,
                          "stage3_prefetch_bucket_size": 1000, "stage3_param_persistence_threshold": 0},
    "optimizer": {"type": "adam", "params": {"lr": 0.0002, "betas": [0.8, 0.99], "eps": 1e-6,
                                             "weight_decay": 0.1, "adam_w_mode": true}},
    "scheduler": {"type": "WarmupDecayLR", "params": {"warmup_min_lr": 1e-5, "warmup_max_lr": 0.001,
                  "warmup_num_steps": 50, "warmup_type": "linear", "total_num_steps": 700}},
    "steps_per_print": 7,
    "wall_clock_breakdown": true,
    "model": {"config": "gpt2/config.json", "weights": "/weights/model.safetensors"},
    "data": {"train": "../data/train.bin", "eval": "../data/eval.bin", "seq_len": 128},
    "run": {"steps": 700, "seed": 18446744073709551615, "output_dir": "runs/a",
            "eval_interval": 50, "eval_batches": 3}
  })");
  auto r = Parse(j, /*world=*/2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const RunConfig& c = *r;
  EXPECT_EQ(c.train_batch_size, 48);
  EXPECT_EQ(c.micro_batch_size, 4);
  EXPECT_EQ(c.gradient_accumulation_steps, 6);
  EXPECT_EQ(c.world_size, 2);
  EXPECT_EQ(c.precision, Precision::kF16);
  EXPECT_STREQ(PrecisionName(c.precision), "fp16");
  EXPECT_EQ(c.fp16.loss_scale, 0);
  EXPECT_EQ(c.fp16.initial_scale_power, 12);
  EXPECT_EQ(c.fp16.loss_scale_window, 500);
  EXPECT_EQ(c.fp16.hysteresis, 3);
  EXPECT_EQ(c.fp16.min_loss_scale, 0.5);
  EXPECT_TRUE(c.fp16.consecutive_hysteresis);
  EXPECT_EQ(c.gradient_clipping, 0.5);
  EXPECT_EQ(c.zero_stage, 2);
  EXPECT_EQ(c.zero.reduce_bucket_size, 200000000);
  EXPECT_EQ(c.zero.allgather_bucket_size, 300000000);
  EXPECT_TRUE(c.zero.overlap_comm);
  EXPECT_FALSE(c.zero.contiguous_gradients);
  EXPECT_EQ(c.zero.stage3_prefetch_bucket_size, 1000);
  EXPECT_EQ(c.zero.stage3_param_persistence_threshold, 0);
  EXPECT_EQ(c.optimizer.type, "Adam");
  EXPECT_EQ(c.optimizer.lr, 0.0002);
  EXPECT_EQ(c.optimizer.beta1, 0.8);
  EXPECT_EQ(c.optimizer.beta2, 0.99);
  EXPECT_EQ(c.optimizer.eps, 1e-6);
  EXPECT_EQ(c.optimizer.weight_decay, 0.1);
  EXPECT_EQ(c.scheduler.type, "WarmupDecayLR");
  EXPECT_EQ(c.scheduler.warmup_min_lr, 1e-5);
  EXPECT_EQ(c.scheduler.warmup_max_lr, 0.001);
  EXPECT_EQ(c.scheduler.warmup_num_steps, 50);
  EXPECT_EQ(c.scheduler.warmup_type, "linear");
  EXPECT_EQ(c.scheduler.total_num_steps, 700);
  EXPECT_EQ(c.steps_per_print, 7);
  EXPECT_TRUE(c.wall_clock_breakdown);
  EXPECT_EQ(c.model.config, "/base/cfg/gpt2/config.json");
  EXPECT_EQ(c.model.weights, "/weights/model.safetensors");
  EXPECT_EQ(c.data.train, "/base/data/train.bin");
  EXPECT_EQ(c.data.eval, "/base/data/eval.bin");
  EXPECT_EQ(c.data.seq_len, 128);
  EXPECT_EQ(c.run.steps, 700);
  EXPECT_EQ(c.run.seed, 18446744073709551615ull);
  EXPECT_EQ(c.run.output_dir, "/base/cfg/runs/a");
  EXPECT_EQ(c.run.eval_interval, 50);
  EXPECT_EQ(c.run.eval_batches, 3);
  EXPECT_EQ(c.raw, j);
}

TEST(RunConfig, AbsentKeysKeepTheirDefaults) {
  auto r = Parse(Base());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const RunConfig& c = *r;
  EXPECT_EQ(c.precision, Precision::kF32);
  EXPECT_EQ(c.gradient_clipping, 0);
  EXPECT_EQ(c.zero_stage, 0);
  EXPECT_FALSE(c.zero.overlap_comm);
  EXPECT_TRUE(c.zero.contiguous_gradients);
  EXPECT_EQ(c.zero.reduce_bucket_size, 500000000);
  EXPECT_EQ(c.zero.allgather_bucket_size, 500000000);
  EXPECT_EQ(c.zero.stage3_prefetch_bucket_size, 50000000);
  EXPECT_EQ(c.zero.stage3_param_persistence_threshold, 100000);
  EXPECT_EQ(c.optimizer.type, "AdamW");
  EXPECT_EQ(c.optimizer.lr, 1e-3);
  EXPECT_EQ(c.optimizer.beta1, 0.9);
  EXPECT_EQ(c.optimizer.beta2, 0.999);
  EXPECT_EQ(c.optimizer.eps, 1e-8);
  EXPECT_EQ(c.optimizer.weight_decay, 0);
  EXPECT_EQ(c.scheduler.type, "");
  EXPECT_EQ(c.steps_per_print, 10);
  EXPECT_FALSE(c.wall_clock_breakdown);
  EXPECT_EQ(c.model.weights, "");
  EXPECT_EQ(c.data.eval, "");
  EXPECT_EQ(c.run.seed, 0u);
  EXPECT_EQ(c.run.eval_interval, 0);
  EXPECT_EQ(c.run.eval_batches, 8);
  EXPECT_EQ(c.fp16.initial_scale_power, 16);
  EXPECT_EQ(c.fp16.loss_scale_window, 1000);

  // DeepSpeed: overlap_comm defaults to true at stage 3 only; bf16 alone selects bf16.
  json j = Base();
  j["zero_optimization"] = {{"stage", 3}};
  j["bf16"] = {{"enabled", true}};
  j["fp16"] = {{"enabled", false}};
  auto r3 = Parse(j);
  ASSERT_TRUE(r3.ok()) << r3.status().ToString();
  EXPECT_TRUE(r3->zero.overlap_comm);
  EXPECT_EQ(r3->precision, Precision::kBF16);
}

// ---- Batch sizes. ----
struct BatchCase {
  std::optional<int64_t> tb, mb, ga;
  int world;
  int64_t want_tb, want_mb, want_ga;  // want_tb == 0: must fail
  std::vector<std::string> error_parts;
};

TEST(RunConfig, BatchSizeRules) {
  const BatchCase cases[] = {
      // All three: must agree.
      {64, 4, 4, 4, 64, 4, 4, {}},
      {32, 4, 2, 2, 0, 0, 0, {"train_batch_size (32)", "train_micro_batch_size_per_gpu (4)",
                              "gradient_accumulation_steps (2)", "world_size (2)", "= 16"}},
      // Two determine the third.
      {32, 4, {}, 2, 32, 4, 4, {}},
      {30, 4, {}, 2, 0, 0, 0, {"gradient_accumulation_steps", "30", "multiple of 8"}},
      {32, {}, 2, 2, 32, 8, 2, {}},
      {30, {}, 4, 2, 0, 0, 0, {"train_micro_batch_size_per_gpu", "30", "multiple of 8"}},
      {{}, 4, 3, 2, 24, 4, 3, {}},
      // One: accumulation 1.
      {32, {}, {}, 4, 32, 8, 1, {}},
      {30, {}, {}, 4, 0, 0, 0, {"train_batch_size (30)", "world_size (4)"}},
      {{}, 4, {}, 3, 12, 4, 1, {}},
      // None.
      {{}, {}, {}, 1, 0, 0, 0, {"train_micro_batch_size_per_gpu", "train_batch_size"}},
      {{}, {}, 8, 1, 0, 0, 0, {"gradient_accumulation_steps\" alone"}},
  };
  for (const BatchCase& bc : cases) {
    json j = Base();
    j.erase("train_micro_batch_size_per_gpu");
    if (bc.tb) j["train_batch_size"] = *bc.tb;
    if (bc.mb) j["train_micro_batch_size_per_gpu"] = *bc.mb;
    if (bc.ga) j["gradient_accumulation_steps"] = *bc.ga;
    SCOPED_TRACE(j.dump() + " world " + std::to_string(bc.world));
    auto r = Parse(j, bc.world);
    if (bc.want_tb == 0) {
      ASSERT_FALSE(r.ok());
      for (const std::string& part : bc.error_parts) EXPECT_THAT(r.status().message(), HasSubstr(part));
      continue;
    }
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->train_batch_size, bc.want_tb);
    EXPECT_EQ(r->micro_batch_size, bc.want_mb);
    EXPECT_EQ(r->gradient_accumulation_steps, bc.want_ga);
    EXPECT_EQ(r->train_batch_size, r->micro_batch_size * r->gradient_accumulation_steps * bc.world);
  }
}

TEST(RunConfig, BatchSizesMustBePositiveIntegers) {
  for (const char* key : {"train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps"}) {
    for (json bad : {json(0), json(-2), json(1.5), json("auto"), json(true), json(1e30)}) {
      json j = Base();
      j[key] = bad;
      std::string msg = Err(j);
      EXPECT_THAT(msg, HasSubstr(std::string("\"") + key + "\" in run.json must be a positive integer"));
      if (bad == json("auto")) {
        EXPECT_THAT(msg, HasSubstr("placeholder"));
      }
    }
  }
  json j = Base();
  j["train_micro_batch_size_per_gpu"] = 8.0;  // an integral float is an integer (DeepSpeed accepts 5e8)
  auto r = Parse(j);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->micro_batch_size, 8);
  EXPECT_THAT(Err(Base(), 0), HasSubstr("world_size"));
}

// ---- Unknown keys. ----
TEST(RunConfig, UnknownKeysAreNamedWithASuggestionAtEveryDepth) {
  json j = Base();
  j["fp16"] = {{"enabled", false}, {"loss_scal", 0}};
  EXPECT_EQ(Err(j), "unknown key \"fp16.loss_scal\" in run.json; did you mean \"fp16.loss_scale\"?");

  struct Case {
    json::json_pointer where;
    std::string want;
  };
  const Case cases[] = {
      {json::json_pointer("/train_batch_sise"), "\"train_batch_sise\" in run.json; did you mean \"train_batch_size\"?"},
      {json::json_pointer("/run/step"), "\"run.step\" in run.json; did you mean \"run.steps\"?"},
      {json::json_pointer("/data/seq_length"), "\"data.seq_length\" in run.json; did you mean \"data.seq_len\"?"},
      {json::json_pointer("/zero_optimization/Stage"), "did you mean \"zero_optimization.stage\"?"},
      {json::json_pointer("/optimizer/params/betass"), "\"optimizer.params.betass\" in run.json; did you mean \"optimizer.params.betas\"?"},
      {json::json_pointer("/scheduler/params/warmup_num_step"), "did you mean \"scheduler.params.warmup_num_steps\"?"},
      // The same key in another section.
      {json::json_pointer("/lr"), "unknown key \"lr\" in run.json; did you mean \"optimizer.params.lr\"?"},
      {json::json_pointer("/model/seq_len"), "did you mean \"data.seq_len\"?"},
      // Nothing close: the allowed keys are listed.
      {json::json_pointer("/data/zzzzzz"), "unknown key \"data.zzzzzz\" in run.json; the keys allowed in \"data\" are: train, eval, seq_len"},
  };
  for (const Case& c : cases) {
    json k = Base();
    k["optimizer"] = {{"type", "AdamW"}};
    k["scheduler"] = {{"type", "WarmupLR"}};
    k[c.where] = 1;
    SCOPED_TRACE(k.dump());
    EXPECT_THAT(Err(k), HasSubstr(c.want));
  }

  // DeepSpeed keys ztrain does not implement say so.
  json ds = Base();
  ds["activation_checkpointing"] = json::object();
  EXPECT_THAT(Err(ds), HasSubstr("\"activation_checkpointing\" in run.json is a DeepSpeed setting that ztrain does not support"));
  ds = Base();
  ds["zero_optimization"] = {{"stage", 1}, {"offload_optimizer", {{"device", "cpu"}}}};
  EXPECT_THAT(Err(ds), HasSubstr("\"zero_optimization.offload_optimizer\" in run.json is a DeepSpeed setting"));
}

// ---- Wrong types and ranges. ----
TEST(RunConfig, WrongTypesNameTheKeyAndTheExpectedType) {
  struct Case {
    std::string pointer;
    json value;
    std::string want;
  };
  const Case cases[] = {
      {"/fp16", json{{"enabled", "yes"}}, "\"fp16.enabled\" in run.json must be a boolean (true or false), got \"yes\" (a string)"},
      {"/bf16", json(true), "\"bf16\" in run.json must be an object"},
      {"/run/steps", json("100"), "\"run.steps\" in run.json must be a positive integer, got \"100\" (a string)"},
      {"/run/steps", json(0), "\"run.steps\" in run.json must be a positive integer, got 0"},
      {"/run/seed", json(-1), "\"run.seed\" in run.json must be an integer from 0"},
      {"/run/eval_interval", json(-1), "\"run.eval_interval\" in run.json must be a non-negative integer"},
      {"/run/eval_batches", json(0), "\"run.eval_batches\" in run.json must be a positive integer"},
      {"/run/output_dir", json(""), "\"run.output_dir\" in run.json must be a non-empty string"},
      {"/data/seq_len", json(-64), "\"data.seq_len\" in run.json must be a positive integer"},
      {"/model/config", json(5), "\"model.config\" in run.json must be a non-empty string, got 5 (an integer)"},
      {"/gradient_clipping", json(-1.0), "\"gradient_clipping\" in run.json must be a number >= 0"},
      {"/steps_per_print", json(0), "\"steps_per_print\" in run.json must be a positive integer"},
      {"/wall_clock_breakdown", json(1), "\"wall_clock_breakdown\" in run.json must be a boolean"},
      {"/optimizer", json{{"type", "AdamW"}, {"params", {{"lr", "3e-3"}}}}, "\"optimizer.params.lr\" in run.json must be a number >= 0"},
      {"/optimizer", json{{"type", "AdamW"}, {"params", {{"betas", json::array({0.9})}}}}, "\"optimizer.params.betas\" in run.json must be an array of two numbers"},
      {"/optimizer", json{{"type", "AdamW"}, {"params", {{"betas", json::array({0.9, 1.5})}}}}, "\"optimizer.params.betas[1]\" in run.json must be a number in [0, 1), got 1.5"},
      {"/optimizer", json{{"type", "AdamW"}, {"params", {{"eps", 0}}}}, "\"optimizer.params.eps\" in run.json must be a number > 0"},
      {"/optimizer", json{{"type", 3}}, "\"optimizer.type\" in run.json must be a non-empty string"},
      {"/fp16", json{{"loss_scale_window", 0}}, "\"fp16.loss_scale_window\" in run.json must be a positive integer"},
      {"/fp16", json{{"initial_scale_power", 65}}, "\"fp16.initial_scale_power\" in run.json must be an integer from 0 to 64"},
      {"/fp16", json{{"min_loss_scale", 0}}, "\"fp16.min_loss_scale\" in run.json must be a number > 0"},
      {"/fp16", json{{"hysteresis", 0}}, "\"fp16.hysteresis\" in run.json must be an integer from 1"},
      {"/zero_optimization", json{{"reduce_bucket_size", 1.5}}, "\"zero_optimization.reduce_bucket_size\" in run.json must be a positive integer"},
      {"/zero_optimization", json{{"overlap_comm", "auto"}}, "\"zero_optimization.overlap_comm\" in run.json must be a boolean"},
      {"/zero_optimization", json{{"stage3_param_persistence_threshold", -1}}, "\"zero_optimization.stage3_param_persistence_threshold\" in run.json must be a non-negative integer"},
      {"/zero_optimization", json(true), "\"zero_optimization\" in run.json must be an object"},
  };
  for (const Case& c : cases) {
    json j = Base();
    j[json::json_pointer(c.pointer)] = c.value;
    SCOPED_TRACE(j.dump());
    EXPECT_THAT(Err(j), HasSubstr(c.want));
  }
  EXPECT_THAT(ParseRunConfig(json::array(), 1, "run.json", "").status().message(),
              HasSubstr("run.json: a run config must be a JSON object"));
}

TEST(RunConfig, ZeroStageOutOfRange) {
  for (int stage : {-1, 4}) {
    json j = Base();
    j["zero_optimization"] = {{"stage", stage}};
    EXPECT_THAT(Err(j), HasSubstr("\"zero_optimization.stage\" in run.json must be an integer from 0 to 3, got " +
                                  std::to_string(stage)));
  }
  for (int stage : {0, 1, 2, 3}) {
    json j = Base();
    j["zero_optimization"] = {{"stage", stage}};
    auto r = Parse(j);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->zero_stage, stage);
  }
}

// ---- Precision. ----
TEST(RunConfig, Bf16AndFp16TogetherAndAutoCast) {
  json j = Base();
  j["bf16"] = {{"enabled", true}};
  j["fp16"] = {{"enabled", true}};
  std::string msg = Err(j);
  EXPECT_THAT(msg, HasSubstr("\"bf16.enabled\""));
  EXPECT_THAT(msg, HasSubstr("\"fp16.enabled\""));

  j = Base();
  j["fp16"] = {{"enabled", true}, {"auto_cast", true}};
  EXPECT_THAT(Err(j), HasSubstr("\"fp16.auto_cast\" in run.json is true"));
  j["fp16"]["auto_cast"] = false;
  auto r = Parse(j);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->precision, Precision::kF16);
}

// ---- Optimizer. ----
TEST(RunConfig, OptimizerTypesAndAdamWMode) {
  json j = Base();
  j["optimizer"] = {{"type", "Adam"}, {"params", {{"adam_w_mode", false}}}};
  EXPECT_THAT(Err(j), HasSubstr("\"optimizer.params.adam_w_mode\" in run.json is false"));

  j["optimizer"] = {{"type", "AdamW"}, {"params", {{"adam_w_mode", true}}}};
  EXPECT_THAT(Err(j), HasSubstr("\"optimizer.params.adam_w_mode\" in run.json applies only to optimizer type \"Adam\""));

  j["optimizer"] = {{"type", "SGD"}};
  EXPECT_THAT(Err(j), HasSubstr("\"optimizer.type\" in run.json is \"SGD\""));

  j["optimizer"] = {{"params", {{"lr", 0.1}}}};
  EXPECT_THAT(Err(j), HasSubstr("\"optimizer.type\" is missing in run.json"));

  for (const char* spelling : {"ADAMW", "adamw", "AdamW"}) {
    j["optimizer"] = {{"type", spelling}, {"params", {{"lr", 0.5}}}};
    auto r = Parse(j);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->optimizer.type, "AdamW");
    EXPECT_EQ(r->optimizer.lr, 0.5);
  }
}

// ---- Scheduler. ----
TEST(RunConfig, SchedulerParameters) {
  auto with_sched = [](json sched) {
    json j = Base();
    j["optimizer"] = {{"type", "AdamW"}, {"params", {{"lr", 0.02}}}};
    j["scheduler"] = std::move(sched);
    return j;
  };
  // warmup_max_lr defaults to the optimizer's lr.
  auto r = Parse(with_sched({{"type", "WarmupLR"}, {"params", {{"warmup_num_steps", 5}}}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->scheduler.type, "WarmupLR");
  EXPECT_EQ(r->scheduler.warmup_max_lr, 0.02);
  EXPECT_EQ(r->scheduler.warmup_num_steps, 5);
  EXPECT_EQ(r->scheduler.warmup_type, "log");

  r = Parse(with_sched({{"type", "WarmupCosineLR"},
                        {"params", {{"total_num_steps", 100}, {"warmup_num_steps", 10}, {"warmup_min_ratio", 0.1},
                                    {"cos_min_ratio", 0.05}, {"warmup_type", "linear"}}}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->scheduler.total_num_steps, 100);
  EXPECT_EQ(r->scheduler.warmup_num_steps, 10);
  EXPECT_EQ(r->scheduler.warmup_min_ratio, 0.1);
  EXPECT_EQ(r->scheduler.cos_min_ratio, 0.05);
  EXPECT_EQ(r->scheduler.warmup_type, "linear");

  struct Case {
    json sched;
    std::string want;
  };
  const Case cases[] = {
      {{{"type", "OneCycle"}}, "\"scheduler.type\" in run.json is \"OneCycle\", which ztrain does not support"},
      {{{"type", "warmuplr"}}, "did you mean \"WarmupLR\"?"},
      {{{"params", json::object()}}, "\"scheduler.type\" is missing in run.json"},
      {{{"type", "WarmupLR"}, {"params", {{"total_num_steps", 10}}}},
       "\"scheduler.params.total_num_steps\" in run.json is not a parameter of scheduler type \"WarmupLR\""},
      {{{"type", "WarmupCosineLR"}, {"params", {{"total_num_steps", 10}, {"warmup_num_steps", 1}, {"warmup_max_lr", 0.1}}}},
       "\"scheduler.params.warmup_max_lr\" in run.json is not a parameter of scheduler type \"WarmupCosineLR\""},
      {{{"type", "WarmupLR"}, {"params", {{"foo", 1}}}}, "unknown key \"scheduler.params.foo\" in run.json"},
      {{{"type", "WarmupDecayLR"}, {"params", {{"warmup_num_steps", 10}}}},
       "\"scheduler.params.total_num_steps\" is missing in run.json"},
      {{{"type", "WarmupCosineLR"}}, "\"scheduler.params.total_num_steps\" is missing in run.json"},
      {{{"type", "WarmupDecayLR"}, {"params", {{"warmup_num_steps", 10}, {"total_num_steps", 10}}}},
       "\"scheduler.params.total_num_steps\" in run.json (10) must be greater than scheduler.params.warmup_num_steps (10)"},
      {{{"type", "WarmupCosineLR"}, {"params", {{"total_num_steps", 500}}}},
       "must be greater than scheduler.params.warmup_num_steps (1000, the default)"},
      {{{"type", "WarmupLR"}, {"params", {{"warmup_type", "cosine"}}}},
       "\"scheduler.params.warmup_type\" in run.json must be \"log\" or \"linear\", got \"cosine\""},
      {{{"type", "WarmupCosineLR"}, {"params", {{"total_num_steps", 2000}, {"cos_min_ratio", 2}}}},
       "\"scheduler.params.cos_min_ratio\" in run.json must be a number in [0, 1]"},
      {{{"type", "WarmupLR"}, {"params", {{"warmup_num_steps", -1}}}},
       "\"scheduler.params.warmup_num_steps\" in run.json must be a non-negative integer"},
      {{{"type", "WarmupLR"}, {"params", {{"warmup_min_lr", 0.5}}}},
       "\"scheduler.params.warmup_min_lr\" in run.json (0.5) is above the peak learning rate optimizer.params.lr (0.02)"},
      {{{"type", "WarmupLR"}, {"params", {{"warmup_max_lr", "1e-3"}}}},
       "\"scheduler.params.warmup_max_lr\" in run.json must be a number >= 0"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.sched.dump());
    EXPECT_THAT(Err(with_sched(c.sched)), HasSubstr(c.want));
  }
}

// ---- Required keys and cross-section checks. ----
TEST(RunConfig, MissingRequiredKeysAreNamed) {
  const std::pair<const char*, const char*> cases[] = {
      {"/model", "\"model\" is missing in run.json"},
      {"/model/config", "\"model.config\" is missing in run.json"},
      {"/data", "\"data\" is missing in run.json"},
      {"/data/train", "\"data.train\" is missing in run.json"},
      {"/data/seq_len", "\"data.seq_len\" is missing in run.json"},
      {"/run", "\"run\" is missing in run.json"},
      {"/run/steps", "\"run.steps\" is missing in run.json"},
      {"/run/output_dir", "\"run.output_dir\" is missing in run.json"},
  };
  for (const auto& [pointer, want] : cases) {
    json j = Base();
    json::json_pointer p(pointer);
    j[p.parent_pointer()].erase(p.back());
    SCOPED_TRACE(pointer);
    EXPECT_THAT(Err(j), HasSubstr(want));
  }
  json j = Base();
  j["run"]["eval_interval"] = 5;
  EXPECT_THAT(Err(j), HasSubstr("\"run.eval_interval\" in run.json is 5 but \"data.eval\" is not given"));
  j["data"]["eval"] = "eval.bin";
  EXPECT_TRUE(Parse(j).ok());
}

// ---- Paths. ----
TEST(RunConfig, RelativePathsResolveAgainstTheConfigDirectory) {
  json j = Base();
  j["model"] = {{"config", "./m/config.json"}, {"weights", "../w"}};
  j["data"] = {{"train", "/abs/train.bin"}, {"eval", "eval.bin"}, {"seq_len", 8}};
  j["run"]["output_dir"] = "../../out/x";
  auto r = Parse(j, 1, "/home/u/proj/configs");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->model.config, "/home/u/proj/configs/m/config.json");
  EXPECT_EQ(r->model.weights, "/home/u/proj/w");
  EXPECT_EQ(r->data.train, "/abs/train.bin");
  EXPECT_EQ(r->data.eval, "/home/u/proj/configs/eval.bin");
  EXPECT_EQ(r->run.output_dir, "/home/u/out/x");

  r = Parse(j, 1, "configs");  // a relative base stays relative
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->model.weights, "w");
  EXPECT_EQ(r->run.output_dir, "../out/x");

  r = Parse(j, 1, "");  // no base: paths as given
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->model.config, "./m/config.json");
  EXPECT_EQ(r->run.output_dir, "../../out/x");
}

// ---- Files. ----
class LoadRunConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("zt_config_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::string p = (dir_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  std::filesystem::path dir_;
};

TEST_F(LoadRunConfigTest, ReadsAndResolvesAgainstItsDirectory) {
  std::string p = Write("run.json", Base().dump(2));
  auto r = LoadRunConfig(p, 2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->model.config, (dir_ / "model.json").string());
  EXPECT_EQ(r->run.output_dir, (dir_ / "out").string());
  EXPECT_EQ(r->train_batch_size, 8);
  EXPECT_EQ(r->raw, Base());
}

TEST_F(LoadRunConfigTest, FileAndSyntaxErrorsNameThePath) {
  std::string missing = (dir_ / "nope.json").string();
  auto r = LoadRunConfig(missing);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr(missing));

  r = LoadRunConfig(dir_.string());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("is a directory"));

  std::string bad = Write("bad.json", "{\n  \"run\": {\"steps\": 10,}\n}\n");
  r = LoadRunConfig(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr(bad + " is not valid JSON"));
  EXPECT_THAT(r.status().message(), HasSubstr("line 2"));
  EXPECT_THAT(r.status().message(), Not(HasSubstr("[json.exception")));

  std::string dup = Write("dup.json", R"({"run": {"steps": 1, "steps": 2}})");
  r = LoadRunConfig(dup);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("key \"run.steps\" appears twice in " + dup));

  // Errors from parsing carry the path as their label.
  json j = Base();
  j["fp16"] = {{"enabled", false}, {"loss_scal", 0}};
  std::string typo = Write("typo.json", j.dump());
  r = LoadRunConfig(typo);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "unknown key \"fp16.loss_scal\" in " + typo + "; did you mean \"fp16.loss_scale\"?");
}

TEST(RunConfig, ShippedTinyRunParses) {
  const std::string root = ZT_SOURCE_DIR;
  auto r = LoadRunConfig(root + "/configs/tiny-run.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const RunConfig& c = *r;
  EXPECT_EQ(c.model.config, root + "/configs/tiny-gpt2.json");
  EXPECT_EQ(c.data.train, root + "/out/data/markov-train.bin");
  EXPECT_EQ(c.data.eval, root + "/out/data/markov-eval.bin");
  EXPECT_EQ(c.data.seq_len, 64);
  EXPECT_EQ(c.micro_batch_size, 16);
  EXPECT_EQ(c.gradient_accumulation_steps, 1);
  EXPECT_EQ(c.train_batch_size, 16);
  EXPECT_EQ(c.optimizer.type, "AdamW");
  EXPECT_EQ(c.optimizer.lr, 3e-3);
  EXPECT_EQ(c.optimizer.beta1, 0.9);
  EXPECT_EQ(c.optimizer.beta2, 0.95);
  EXPECT_EQ(c.optimizer.weight_decay, 0.0);
  EXPECT_EQ(c.scheduler.type, "WarmupCosineLR");
  EXPECT_EQ(c.scheduler.warmup_num_steps, 30);
  EXPECT_EQ(c.scheduler.warmup_type, "linear");
  EXPECT_EQ(c.scheduler.total_num_steps, c.run.steps);
  EXPECT_EQ(c.run.steps, 300);
  EXPECT_EQ(c.steps_per_print, 25);
  EXPECT_EQ(c.run.eval_interval, 100);
  EXPECT_EQ(c.run.eval_batches, 4);
  EXPECT_EQ(c.run.output_dir, root + "/out/tiny-run");
  EXPECT_EQ(c.run.seed, 1u);
  EXPECT_EQ(c.gradient_clipping, 1.0);
  EXPECT_EQ(c.precision, Precision::kF32);
}

TEST(ConfigInternal, EditDistance) {
  EXPECT_EQ(internal::EditDistance("loss_scal", "loss_scale"), 1);
  EXPECT_EQ(internal::EditDistance("Stage", "stage"), 0);
  EXPECT_EQ(internal::EditDistance("kitten", "sitting"), 3);
  EXPECT_EQ(internal::EditDistance("", "abc"), 3);
}

}  // namespace
}  // namespace zt::config
