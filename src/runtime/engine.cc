// Engine: step-program construction and the training step.
#include "runtime/engine.h"

#include <chrono>
#include <cmath>
#include <limits>

#include "ir/autodiff.h"
#include "runtime/adamw_scalars.h"
#include "runtime/lr_schedule.h"

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

StatusOr<std::unique_ptr<Engine>> Engine::Create(std::unique_ptr<ir::Graph> g, const EngineSpec& spec,
                                                 const EngineOptions& options, Backend& backend,
                                                 const CompileOptions& compile, const ExecutorOptions& exec) {
  auto e = std::unique_ptr<Engine>(new Engine());
  e->options_ = options;
  if (options.precision == config::Precision::kF16) e->scaler_ = LossScaler(options.fp16);
  ZT_RETURN_IF_ERROR(BuildStepGraph(*g, spec, options));
  ZT_ASSIGN_OR_RETURN(e->program_, Program::Compile(std::move(g), compile));
  const ir::Graph& pg = e->program_->graph();
  e->tokens_ = spec.tokens;
  e->targets_ = spec.targets;
  e->loss_ = spec.loss;
  e->seed_ = pg.FindValue(kLossSeed);
  e->scalars_ = pg.FindValue(ir::kAdamWScalarsInput);
  e->sumsq_ = pg.FindValue(ir::kGradSumSquares);
  ZT_CHECK(e->seed_ && e->scalars_ && e->sumsq_);
  ZT_ASSIGN_OR_RETURN(e->executor_, Executor::Create(*e->program_, backend, exec));
  if (e->executor_->memory_mode() == ExecMemoryMode::kDynamic &&
      (options.grad_accum > 1 || options.wall_clock_breakdown)) {
    return InvalidArgument("ZT_EXEC_MEMORY=dynamic runs whole steps only: use it with gradient_accumulation_steps 1 "
                           "and without wall_clock_breakdown");
  }
  return e;
}

Status Engine::InitParams(const std::function<void(const ir::Value&, const Tensor&)>& init) {
  const ir::Graph& g = program_->graph();
  std::vector<float> f32;
  std::vector<char> zeros, converted;
  for (const auto& v : g.values()) {
    if (v->kind == ir::ValueKind::kState) {
      zeros.assign(v->nbytes(), 0);
      ZT_RETURN_IF_ERROR(executor_->Write(v.get(), zeros.data(), zeros.size()));
    }
  }
  for (const auto& v : g.values()) {
    if (v->kind != ir::ValueKind::kParam) continue;
    f32.assign(static_cast<size_t>(v->shape.numel()), 0.0f);
    init(*v, Tensor(f32.data(), DType::kF32, v->shape));
    if (const ir::Value* master = g.FindValue(ir::MasterName(*v))) {
      ZT_RETURN_IF_ERROR(executor_->Write(master, f32.data(), f32.size() * sizeof(float)));
    }
    converted.resize(v->nbytes());
    Tensor dst(converted.data(), v->dtype, v->shape);
    for (size_t i = 0; i < f32.size(); ++i) {
      switch (v->dtype) {
        case DType::kF32: dst.as<float>()[i] = f32[i]; break;
        case DType::kBF16: dst.as<BFloat16>()[i] = FloatToBF16(f32[i]); break;
        case DType::kF16: dst.as<Half>()[i] = FloatToHalf(f32[i]); break;
        default: return InvalidArgument("parameter %" + v->name + " is not floating");
      }
    }
    ZT_RETURN_IF_ERROR(executor_->Write(v.get(), converted.data(), converted.size()));
  }
  global_step_ = 0;
  applied_updates_ = 0;
  return OkStatus();
}

Status Engine::ReadParams(const std::function<void(const ir::Value&, const Tensor&)>& sink) {
  const ir::Graph& g = program_->graph();
  std::vector<float> f32;
  std::vector<char> raw;
  for (const auto& v : g.values()) {
    if (v->kind != ir::ValueKind::kParam) continue;
    f32.resize(static_cast<size_t>(v->shape.numel()));
    if (const ir::Value* master = g.FindValue(ir::MasterName(*v))) {
      ZT_RETURN_IF_ERROR(executor_->Read(master, f32.data(), f32.size() * sizeof(float)));
    } else {
      raw.resize(v->nbytes());
      ZT_RETURN_IF_ERROR(executor_->Read(v.get(), raw.data(), raw.size()));
      Tensor src(raw.data(), v->dtype, v->shape);
      for (size_t i = 0; i < f32.size(); ++i) {
        f32[i] = v->dtype == DType::kF32    ? src.as<float>()[i]
                 : v->dtype == DType::kBF16 ? BF16ToFloat(src.as<BFloat16>()[i])
                                            : HalfToFloat(src.as<Half>()[i]);
      }
    }
    sink(*v, Tensor(f32.data(), DType::kF32, v->shape));
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
