// Engine: one data-parallel rank's training step. From a forward graph (tokens, targets, loss) it
// builds the whole step program — autodiff with a loss-scale seed, gradient accumulation buffers,
// global-norm clipping, f32 master weights for bf16/fp16 parameters, AdamW — compiles it, and runs
// steps: grad_accum micro-batches (forward+backward), then the optimizer phase. fp16 steps whose
// gradients overflow are skipped on the device and the loss scale backs off (DeepSpeed semantics).
// Invariant: the learning-rate schedule and AdamW's bias correction advance only on applied
// updates; everything that influences the next step lives in the graph's persistent values plus
// EngineState, so restoring both resumes bit-exactly.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <vector>

#include "backend/backend.h"
#include "config/run_config.h"
#include "ir/optimizer.h"
#include "runtime/executor.h"
#include "runtime/pending_snapshot.h"
#include "runtime/loss_scaler.h"
#include "runtime/program.h"
#include "passes/zero.h"
#include "ckpt/reshard.h"
#include "ckpt/snapshot.h"

namespace zt {

struct EngineOptions {
  config::Precision precision = config::Precision::kF32;
  config::Fp16Options fp16;
  int64_t grad_accum = 1;
  double gradient_clipping = 0;  // max global norm; 0: none
  config::OptimizerOptions optimizer;
  config::SchedulerOptions scheduler;
  bool no_decay_for_vectors = false;
  // Time forward, backward and optimizer phases separately (DeepSpeed's wall_clock_breakdown).
  bool wall_clock_breakdown = false;
  // Data parallelism: ZeRO stage (0: gradients all-reduced; 1-3: passes/zero.h) over the ranks
  // of `comm` (none: one rank).
  int zero_stage = 0;
  passes::GatherUnit gather_unit = passes::GatherUnit::kBlock;
  int64_t bucket_elements = 500'000'000;
  comm::Communicator* comm = nullptr;
  // Testing aid: steps (1-based global step numbers) whose loss seed is set to +inf, which makes
  // every gradient overflow exactly as a real fp16 overflow does.
  std::set<int64_t> inject_overflow_steps;

  static EngineOptions FromConfig(const config::RunConfig& c);
};

struct EngineSpec {
  ir::Value* tokens = nullptr;   // i32 [B, T]
  ir::Value* targets = nullptr;  // i32 [B, T]
  ir::Value* loss = nullptr;     // f32 []
};

struct StepStats {
  int64_t step = 0;          // global step just taken (1-based)
  double loss = 0;           // mean over the micro-batches
  double grad_norm = 0;      // true global norm before clipping (inf/nan on overflow)
  double lr = 0;             // learning rate applied (0 if skipped)
  double loss_scale = 1;     // scale used by this step
  bool skipped = false;      // fp16 overflow: no update
  double seconds = 0;        // wall time of the step
  double forward_seconds = 0, backward_seconds = 0, optimizer_seconds = 0;  // wall_clock_breakdown
};

// Host-side state that, with the graph's persistent values, determines the rest of training.
struct EngineState {
  int64_t global_step = 0;      // steps taken (applied or skipped)
  int64_t applied_updates = 0;  // optimizer updates applied
  LossScaler::State scaler;
};

class Engine {
 public:
  using BatchFn = std::function<void(int micro_step, std::vector<int32_t>& tokens, std::vector<int32_t>& targets)>;

  // Turns a forward graph into the whole step graph (loss-scale seed, backward, accumulation,
  // norm, optimizer) without compiling or allocating anything (`ztrain compile` uses this).
  static Status BuildStepGraph(ir::Graph& forward, const EngineSpec& spec, const EngineOptions& options);
  // The rewrites that shard the step over `world_size` ranks (data parallel or ZeRO); `zero` (if
  // given) receives the ZeRO pass, whose layout is known after it ran.
  static std::vector<std::shared_ptr<passes::Pass>> ShardingPasses(const EngineOptions& options, int64_t world_size,
                                                                    std::shared_ptr<passes::ZeroPass>* zero = nullptr);
  // Every rewrite of the step before DCE and planning: ShardingPasses, then the fusion passes
  // (passes/fusion.h, unless ZT_FUSION=0).
  static std::vector<std::shared_ptr<passes::Pass>> StepPasses(const EngineOptions& options, int64_t world_size,
                                                                std::shared_ptr<passes::ZeroPass>* zero = nullptr);

  static StatusOr<std::unique_ptr<Engine>> Create(std::unique_ptr<ir::Graph> forward, const EngineSpec& spec,
                                                  const EngineOptions& options, Backend& backend,
                                                  const CompileOptions& compile = {},
                                                  const ExecutorOptions& exec = {});

  // The model's parameters (as the model builder named them), whatever the sharding.
  struct ParamInfo {
    std::string name;
    DType dtype;
    Shape shape;
  };
  const std::vector<ParamInfo>& params() const { return params_; }

  // Sets every parameter from f32 values `init` writes into a host tensor of the parameter's
  // shape (master copies get them exactly, parameters rounded to their dtype; with ZeRO each rank
  // keeps its shards), and zeroes optimizer states and accumulators. Call on every rank.
  using ParamFn = std::function<void(const std::string& name, const Tensor& host_f32)>;
  Status InitParams(const ParamFn& init);

  // One global step: grad_accum micro-batches from `next`, then the optimizer phase.
  StatusOr<StepStats> TrainStep(const BatchFn& next);
  // Mean loss of `batches` forward-only micro-batches (no state changes).
  StatusOr<double> Evaluate(const BatchFn& next, int64_t batches);

  // The f32 value of each whole parameter (from master copies where there are; with ZeRO the
  // shards are all-gathered, so every rank must call it).
  Status ReadParams(const ParamFn& sink);

  EngineState state() const;
  void Restore(const EngineState& s);
  double CurrentLearningRate() const;

  const EngineOptions& options() const { return options_; }
  int rank() const;
  int world_size() const;
  // The ZeRO layout (stages 1-3; empty units otherwise).
  const passes::ZeroLayout& zero_layout() const { return layout_; }

  // Checkpoints (runtime/checkpoint_state.cc). The unit layout checkpoints slice: the ZeRO layout,
  // or at stage 0 the same grouping for this world size, so any stage can restore any other.
  const passes::ZeroLayout& checkpoint_layout() const { return ckpt_layout_; }
  // This rank's training state after the last step: sections "<kind>/<unit>" (kinds master,
  // exp_avg, exp_avg_sq), this rank's f32 slice [rank * shard, (rank + 1) * shard) of each unit,
  // appended to `s` (which may hold other sections already). Every rank calls it (no
  // communication). StartSnapshot only queues the copies (the copy stream; on a GPU the next
  // step's forward and backward overlap them and its optimizer phase waits for them); the
  // returned PendingSnapshot's Wait() must return before the bytes are used. TakeSnapshot waits.
  StatusOr<std::unique_ptr<PendingSnapshot>> StartSnapshot(ckpt::RankSnapshot* s);
  Status TakeSnapshot(ckpt::RankSnapshot* s);
  // The byte sizes of the sections StartSnapshot adds, in order (to size buffers ahead).
  std::vector<size_t> SnapshotSectionBytes() const;
  // Host memory for snapshot buffers (SnapshotPool): pinned on a GPU, so the copies are
  // asynchronous. Lives as long as the engine.
  ckpt::HostAllocator* snapshot_allocator() { return snapshot_allocator_.get(); }
  // Sets parameters, masters and AdamW moments from a checkpoint written with `source` (any world
  // size and stage); zeroes accumulators. The engine's step counters come from Restore(state).
  Status RestoreState(const passes::ZeroLayout& source, const ckpt::SectionReader& read);
  Program& program() { return *program_; }
  Executor& executor() { return *executor_; }
  int64_t tokens_per_step() const;
  // Flops of one global step: grad_accum forward+backward passes and one optimizer phase.
  double flops_per_step() const;

 private:
  Engine() = default;
  StatusOr<double> ReadScalar(const ir::Value* v);
  void InitSnapshotting();  // checkpoint_state.cc

  EngineOptions options_;
  std::unique_ptr<Program> program_;
  std::unique_ptr<Executor> executor_;
  const ir::Value* tokens_ = nullptr;
  const ir::Value* targets_ = nullptr;
  const ir::Value* loss_ = nullptr;
  const ir::Value* seed_ = nullptr;
  const ir::Value* scalars_ = nullptr;
  const ir::Value* sumsq_ = nullptr;
  LossScaler scaler_;
  std::vector<ParamInfo> params_;
  passes::ZeroLayout layout_;
  passes::ZeroLayout ckpt_layout_;
  int64_t global_step_ = 0;
  int64_t applied_updates_ = 0;
  std::vector<int32_t> tokens_buf_, targets_buf_;
  // Recorded after each snapshot's copies; the optimizer phase waits for it (SetPhaseFence).
  std::unique_ptr<Event> snapshot_fence_;
  std::unique_ptr<ckpt::HostAllocator> snapshot_allocator_;
};

}  // namespace zt
