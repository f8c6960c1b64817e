// Engine: step-program construction and the training step.
#include "runtime/engine.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <map>

#include "ir/autodiff.h"
#include "runtime/adamw_scalars.h"
#include "runtime/host_convert.h"
#include "runtime/lr_schedule.h"
#include "comm/communicator.h"
#include "passes/data_parallel.h"
#include "passes/fusion.h"

namespace zt {
namespace {

constexpr const char* kLossSeed = "loss.seed";

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

EngineOptions EngineOptions::FromConfig(const config::RunConfig& c) {
  EngineOptions o;
  o.precision = c.precision;
  o.fp16 = c.fp16;
  o.grad_accum = c.gradient_accumulation_steps;
  o.gradient_clipping = c.gradient_clipping;
  o.optimizer = c.optimizer;
  o.scheduler = c.scheduler;
  o.wall_clock_breakdown = c.wall_clock_breakdown;
  o.zero_stage = c.zero_stage;
  o.gather_unit = c.zero.gather_unit == "param" ? passes::GatherUnit::kParam : passes::GatherUnit::kBlock;
  o.bucket_elements = c.zero.reduce_bucket_size;
  return o;
}

Status Engine::BuildStepGraph(ir::Graph& g, const EngineSpec& spec, const EngineOptions& options) {
  if (!spec.tokens || !spec.targets || !spec.loss) return InvalidArgument("Engine needs tokens, targets and loss values");
  if (options.grad_accum < 1) return InvalidArgument("gradient_accumulation_steps must be >= 1");
  ir::Value* seed = g.AddInput(kLossSeed, spec.loss->dtype, spec.loss->shape);
  ZT_RETURN_IF_ERROR(ir::AppendBackward(g, spec.loss, ir::ParamsOf(g), {.seed = seed}));
  ir::OptimizerStepOptions opt;
  opt.adamw = {options.optimizer.beta1, options.optimizer.beta2, options.optimizer.eps, options.optimizer.weight_decay,
               options.no_decay_for_vectors};
  opt.master_weights = options.precision != config::Precision::kF32;
  opt.grad_accum = options.grad_accum;
  return ir::AppendOptimizerStep(g, opt);
}

std::vector<std::shared_ptr<passes::Pass>> Engine::ShardingPasses(const EngineOptions& options, int64_t world,
                                                                  std::shared_ptr<passes::ZeroPass>* zero) {
  std::vector<std::shared_ptr<passes::Pass>> out;
  if (options.zero_stage >= 1) {
    auto z = std::make_shared<passes::ZeroPass>(
        passes::ZeroOptions{options.zero_stage, world, options.gather_unit, options.bucket_elements});
    if (zero) *zero = z;
    out.push_back(z);
  } else if (world > 1) {
    out.push_back(std::make_shared<passes::DataParallelPass>(world));
  }
  return out;
}

std::vector<std::shared_ptr<passes::Pass>> Engine::StepPasses(const EngineOptions& options, int64_t world,
                                                              std::shared_ptr<passes::ZeroPass>* zero) {
  std::vector<std::shared_ptr<passes::Pass>> out = ShardingPasses(options, world, zero);
  for (auto& p : passes::FusionPasses()) out.push_back(p);
  return out;
}

StatusOr<std::unique_ptr<Engine>> Engine::Create(std::unique_ptr<ir::Graph> g, const EngineSpec& spec,
                                                 const EngineOptions& options, Backend& backend,
                                                 const CompileOptions& compile, const ExecutorOptions& exec) {
  auto e = std::unique_ptr<Engine>(new Engine());
  e->options_ = options;
  if (options.precision == config::Precision::kF16) e->scaler_ = LossScaler(options.fp16);
  const int64_t world = options.comm ? options.comm->world_size() : 1;
  std::vector<passes::ParamForLayout> pls;
  for (ir::Value* p : ir::ParamsOf(*g)) {
    e->params_.push_back({p->name, p->dtype, p->shape});
    double wd = options.no_decay_for_vectors && p->shape.rank() < 2 ? 0.0 : options.optimizer.weight_decay;
    pls.push_back({p, wd});
  }
  ZT_ASSIGN_OR_RETURN(e->ckpt_layout_,
                      passes::PlanZeroLayout(pls, {options.zero_stage, world, options.gather_unit, options.bucket_elements}));
  ZT_RETURN_IF_ERROR(BuildStepGraph(*g, spec, options));
  CompileOptions co = compile;
  co.target = backend.kind() == DeviceKind::kCUDA ? ir::Target::kCuda : ir::Target::kCpu;
  std::shared_ptr<passes::ZeroPass> zero;
  for (auto& p : StepPasses(options, world, &zero)) co.passes.push_back(p);
  ZT_ASSIGN_OR_RETURN(e->program_, Program::Compile(std::move(g), co));
  if (zero) e->layout_ = zero->layout();
  if (zero) ZT_RETURN_IF_ERROR(ckpt::CheckSameUnits(e->layout_, e->ckpt_layout_));
  const ir::Graph& pg = e->program_->graph();
  e->tokens_ = spec.tokens;
  e->targets_ = spec.targets;
  const ir::Value* global_loss = pg.FindValue(passes::kGlobalLoss);
  e->loss_ = global_loss ? global_loss : spec.loss;
  e->seed_ = pg.FindValue(kLossSeed);
  e->scalars_ = pg.FindValue(ir::kAdamWScalarsInput);
  e->sumsq_ = pg.FindValue(ir::kGradSumSquares);
  ZT_CHECK(e->seed_ && e->scalars_ && e->sumsq_);
  ExecutorOptions eo = exec;
  eo.comm = options.comm;
  ZT_ASSIGN_OR_RETURN(e->executor_, Executor::Create(*e->program_, backend, eo));
  e->InitSnapshotting();
  if (e->executor_->memory_mode() == ExecMemoryMode::kDynamic &&
      (options.grad_accum > 1 || options.wall_clock_breakdown)) {
    return InvalidArgument("ZT_EXEC_MEMORY=dynamic runs whole steps only: use it with gradient_accumulation_steps 1 "
                           "and without wall_clock_breakdown");
  }
  return e;
}

int Engine::rank() const { return options_.comm ? options_.comm->rank() : 0; }
int Engine::world_size() const { return options_.comm ? options_.comm->world_size() : 1; }


Status Engine::InitParams(const ParamFn& init) {
  const ir::Graph& g = program_->graph();
  std::vector<char> bytes;
  for (const auto& v : g.values()) {
    if (v->kind == ir::ValueKind::kState) {
      bytes.assign(v->nbytes(), 0);
      ZT_RETURN_IF_ERROR(executor_->Write(v.get(), bytes.data(), bytes.size()));
    }
  }
  std::map<std::string, std::vector<float>> values;
  for (const ParamInfo& p : params_) {
    std::vector<float>& f32 = values[p.name];
    f32.assign(static_cast<size_t>(p.shape.numel()), 0.0f);
    init(p.name, Tensor(f32.data(), DType::kF32, p.shape));
    if (const ir::Value* v = g.FindValue(p.name)) {  // a whole parameter (not stage 3)
      ZT_RETURN_IF_ERROR(FromF32Buffer(f32.data(), p.shape.numel(), v->dtype, &bytes));
      ZT_RETURN_IF_ERROR(executor_->Write(v, bytes.data(), bytes.size()));
    }
    if (const ir::Value* master = g.FindValue(ir::MasterName(p.name))) {
      ZT_RETURN_IF_ERROR(executor_->Write(master, f32.data(), f32.size() * sizeof(float)));
    }
  }
  // ZeRO: this rank's slice of each unit's flat buffer into its master and parameter shards.
  std::vector<float> flat;
  for (const passes::ZeroUnit& u : layout_.units) {
    flat.assign(static_cast<size_t>(u.padded), 0.0f);
    for (const passes::ZeroParam& zp : u.params) {
      const auto& v = values.at(zp.name);
      std::copy(v.begin(), v.end(), flat.begin() + zp.offset);
    }
    const float* mine = flat.data() + static_cast<int64_t>(rank()) * u.shard;
    if (const ir::Value* master = g.FindValue(passes::ZeroStateName(u, "master"))) {
      ZT_RETURN_IF_ERROR(executor_->Write(master, mine, static_cast<size_t>(u.shard) * sizeof(float)));
    }
    if (const ir::Value* shard = g.FindValue(passes::ZeroStateName(u, "shard"))) {
      ZT_RETURN_IF_ERROR(FromF32Buffer(mine, u.shard, u.dtype, &bytes));
      ZT_RETURN_IF_ERROR(executor_->Write(shard, bytes.data(), bytes.size()));
    }
  }
  global_step_ = 0;
  applied_updates_ = 0;
  return OkStatus();
}

Status Engine::ReadParams(const ParamFn& sink) {
  const ir::Graph& g = program_->graph();
  std::vector<float> f32;
  std::vector<char> raw;
  if (layout_.units.empty()) {
    for (const ParamInfo& p : params_) {
      f32.resize(static_cast<size_t>(p.shape.numel()));
      if (const ir::Value* master = g.FindValue(ir::MasterName(p.name))) {
        ZT_RETURN_IF_ERROR(executor_->Read(master, f32.data(), f32.size() * sizeof(float)));
      } else {
        const ir::Value* v = g.FindValue(p.name);
        raw.resize(v->nbytes());
        ZT_RETURN_IF_ERROR(executor_->Read(v, raw.data(), raw.size()));
        ToF32Buffer(raw.data(), v->dtype, p.shape.numel(), f32.data());
      }
      sink(p.name, Tensor(f32.data(), DType::kF32, p.shape));
    }
    return OkStatus();
  }
  // ZeRO: gather every rank's f32 shard of each unit, then cut the unit into its parameters.
  std::vector<float> shard, full;
  for (const passes::ZeroUnit& u : layout_.units) {
    shard.resize(static_cast<size_t>(u.shard));
    if (const ir::Value* master = g.FindValue(passes::ZeroStateName(u, "master"))) {
      ZT_RETURN_IF_ERROR(executor_->Read(master, shard.data(), shard.size() * sizeof(float)));
    } else {
      const ir::Value* v = g.FindValue(passes::ZeroStateName(u, "shard"));
      ZT_CHECK(v != nullptr) << "ZeRO unit " << u.name << " has neither master nor shard";
      raw.resize(v->nbytes());
      ZT_RETURN_IF_ERROR(executor_->Read(v, raw.data(), raw.size()));
      ToF32Buffer(raw.data(), v->dtype, u.shard, shard.data());
    }
    full.resize(static_cast<size_t>(u.padded));
    if (options_.comm != nullptr && options_.comm->world_size() > 1) {
      Tensor in(shard.data(), DType::kF32, Shape{u.shard}), out(full.data(), DType::kF32, Shape{u.padded});
      ZT_RETURN_IF_ERROR(options_.comm->Wait(options_.comm->AllGather(in, out)).WithContext("gathering parameters"));
    } else {
      std::copy(shard.begin(), shard.end(), full.begin());
    }
    for (const passes::ZeroParam& zp : u.params) {
      sink(zp.name, Tensor(full.data() + zp.offset, DType::kF32, zp.shape));
    }
  }
  return OkStatus();
}

StatusOr<double> Engine::ReadScalar(const ir::Value* v) {
  float x = 0;
  ZT_RETURN_IF_ERROR(executor_->Read(v, &x, sizeof(x)));
  return static_cast<double>(x);
}

double Engine::CurrentLearningRate() const {
  return LearningRate(options_.scheduler, options_.optimizer.lr, applied_updates_);
}

double Engine::flops_per_step() const {
  double k = static_cast<double>(options_.grad_accum);
  return k * (program_->flops(ir::Phase::kForward) + program_->flops(ir::Phase::kBackward)) +
         program_->flops(ir::Phase::kOptimizer);
}

int64_t Engine::tokens_per_step() const { return tokens_->shape.numel() * options_.grad_accum; }

StatusOr<StepStats> Engine::TrainStep(const BatchFn& next) {
  StepStats st;
  st.step = global_step_ + 1;
  st.loss_scale = scaler_.scale();
  st.lr = CurrentLearningRate();
  const int64_t k = options_.grad_accum;
  float seed = static_cast<float>(scaler_.scale() / static_cast<double>(k));
  if (options_.inject_overflow_steps.count(st.step)) seed = std::numeric_limits<float>::infinity();
  auto scalars = AdamWStepScalars(applied_updates_ + 1, st.lr, options_.optimizer.beta1, options_.optimizer.beta2,
                                  1.0 / scaler_.scale(), options_.gradient_clipping);
  double t0 = Now();
  double loss_sum = 0;
  for (int64_t m = 0; m < k; ++m) {
    next(static_cast<int>(m), tokens_buf_, targets_buf_);
    if (tokens_buf_.size() != static_cast<size_t>(tokens_->shape.numel()) || targets_buf_.size() != tokens_buf_.size()) {
      return InvalidArgument("a micro-batch must hold " + std::to_string(tokens_->shape.numel()) + " tokens and targets");
    }
    ZT_RETURN_IF_ERROR(executor_->Write(tokens_, tokens_buf_.data(), tokens_buf_.size() * sizeof(int32_t)));
    ZT_RETURN_IF_ERROR(executor_->Write(targets_, targets_buf_.data(), targets_buf_.size() * sizeof(int32_t)));
    ZT_RETURN_IF_ERROR(executor_->Write(seed_, &seed, sizeof(seed)));
    bool last = m == k - 1;
    if (last) ZT_RETURN_IF_ERROR(executor_->Write(scalars_, scalars.data(), sizeof(scalars)));
    // The optimizer phase runs after the last micro-batch's backward (without accumulation the
    // gradients it reads are intermediates of the same run: arena memory keeps them).
    if (options_.wall_clock_breakdown) {
      double a = Now();
      ZT_RETURN_IF_ERROR(executor_->Run({true, false, false}));
      double b = Now();
      ZT_RETURN_IF_ERROR(executor_->Run({false, true, false}));
      double c = Now();
      if (last) ZT_RETURN_IF_ERROR(executor_->Run({false, false, true}));
      st.forward_seconds += b - a;
      st.backward_seconds += c - b;
      if (last) st.optimizer_seconds = Now() - c;
    } else {
      ZT_RETURN_IF_ERROR(executor_->Run({true, true, last}));
    }
    ZT_ASSIGN_OR_RETURN(double loss, ReadScalar(loss_));
    loss_sum += loss;
  }
  ZT_ASSIGN_OR_RETURN(double sumsq, ReadScalar(sumsq_));
  st.seconds = Now() - t0;
  st.loss = loss_sum / static_cast<double>(k);
  st.grad_norm = std::sqrt(sumsq) / scaler_.scale();
  st.skipped = !std::isfinite(sumsq);
  scaler_.Update(st.skipped);
  ++global_step_;
  if (st.skipped) {
    st.lr = 0;
  } else {
    ++applied_updates_;
  }
  return st;
}

StatusOr<double> Engine::Evaluate(const BatchFn& next, int64_t batches) {
  double sum = 0;
  for (int64_t i = 0; i < batches; ++i) {
    next(static_cast<int>(i), tokens_buf_, targets_buf_);
    ZT_RETURN_IF_ERROR(executor_->Write(tokens_, tokens_buf_.data(), tokens_buf_.size() * sizeof(int32_t)));
    ZT_RETURN_IF_ERROR(executor_->Write(targets_, targets_buf_.data(), targets_buf_.size() * sizeof(int32_t)));
    ZT_RETURN_IF_ERROR(executor_->Run({true, false, false}));
    ZT_ASSIGN_OR_RETURN(double loss, ReadScalar(loss_));
    sum += loss;
  }
  return batches > 0 ? sum / static_cast<double>(batches) : 0.0;
}

EngineState Engine::state() const { return {global_step_, applied_updates_, scaler_.state()}; }

void Engine::Restore(const EngineState& s) {
  global_step_ = s.global_step;
  applied_updates_ = s.applied_updates;
  scaler_.Restore(s.scaler);
}

}  // namespace zt
