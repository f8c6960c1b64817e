// Executor on CUDA (GPU; skipped without one): CUDA-graph replay is bit-identical to eager runs
// and sees new inputs every step, side streams join the capture, each PhaseMask gets its own
// graph, a capture that fails warns and runs eagerly, ZT_CUDA_GRAPHS switches capture, the arena
// peak measured by the allocator equals the plan and steps allocate nothing, and a tiny GPT-2
// trained on CUDA matches the CPU run (graph replay bit-identical to eager, with and without
// gradient accumulation).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "backend/cpu/cpu_backend.h"
#include "ir/builder.h"
#include "ir/op_registry.h"
#include "ir/ops/optim_utils.h"
#include "ir/ops/views.h"
#include "kernels/kernel.h"
#include "models/gpt2.h"
#include "models/init.h"
#include "runtime/engine.h"
#include "runtime/executor.h"
#include "runtime/program.h"
#include "support/device_compare.h"
#include "support/graph_runner.h"
#ifdef ZT_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace zt {
namespace {

#ifdef ZT_WITH_CUDA

constexpr int64_t kRows = 33, kCols = 7;

std::unique_ptr<CudaBackend> MakeBackend() {
  auto b = CudaBackend::Create(0);
  ZT_CHECK(b.ok()) << b.status().ToString();
  return std::move(*b);
}

// x f32[33, 7] (input), acc f32[7, 33] (state):
//   t = transpose(x) ; acc += t ; c = concat(t, t) ; s = sum_squares(acc, c)
// streams: {transpose, concat, sum_squares} (others on compute).
struct SmallStep {
  std::unique_ptr<Program> program;
  const ir::Value *x, *acc, *c, *s;
};

SmallStep BuildSmallStep(int transpose_stream = 0, int concat_stream = 0, int sumsq_stream = 0) {
  auto g = std::make_unique<ir::Graph>("small_step");
  ir::Builder b(g.get());
  ir::Value* x = b.Input("x", DType::kF32, Shape{kRows, kCols});
  ir::Value* acc = b.State("acc", DType::kF32, Shape{kCols, kRows}, MemCategory::kGradients);
  ir::Value* t = ir::ops::Transpose(b, x, {1, 0}, "t");
  ir::Value* acc2 = ir::ops::Accumulate(b, acc, t, "acc2");
  ir::Value* c = ir::ops::Concat(b, {t, t}, 0, "c");
  ir::Value* s = ir::ops::SumSquares(b, {acc2, c}, "s");
  g->outputs() = {s, c};
  for (auto& n : g->nodes()) {
    if (n->op->name == "transpose") n->stream = transpose_stream;
    if (n->op->name == "concat") n->stream = concat_stream;
    if (n->op->name == "sum_squares") n->stream = sumsq_stream;
  }
  auto p = Program::Compile(std::move(g));
  ZT_CHECK(p.ok()) << p.status().ToString();
  SmallStep st;
  st.program = std::move(*p);
  const ir::Graph& pg = st.program->graph();
  st.x = pg.FindValue("x");
  st.acc = pg.FindValue("acc");
  st.c = pg.FindValue("c");
  st.s = pg.FindValue("s");
  return st;
}

struct StepResult {
  float s = 0;
  std::vector<float> acc, c;
};

// Runs `steps` steps with x_k = RandomUniform(seed k) and returns every step's results; checks
// them against a host computation as it goes.
std::vector<StepResult> RunSmallSteps(SmallStep& st, Executor& ex, int steps, PhaseMask mask = PhaseMask::All()) {
  std::vector<float> zero(kRows * kCols, 0.0f), host_acc(kRows * kCols, 0.0f);
  EXPECT_TRUE(ex.Write(st.acc, zero.data(), zero.size() * 4).ok());
  std::vector<StepResult> out;
  for (int k = 0; k < steps; ++k) {
    std::vector<float> x = testing::RandomUniform(kRows * kCols, 100 + k);
    EXPECT_TRUE(ex.Write(st.x, x.data(), x.size() * 4).ok());
    Status r = ex.Run(mask);
    EXPECT_TRUE(r.ok()) << r.ToString();
    StepResult res;
    res.acc.resize(kRows * kCols);
    res.c.resize(2 * kRows * kCols);
    EXPECT_TRUE(ex.Read(st.s, &res.s, 4).ok());
    EXPECT_TRUE(ex.Read(st.acc, res.acc.data(), res.acc.size() * 4).ok());
    EXPECT_TRUE(ex.Read(st.c, res.c.data(), res.c.size() * 4).ok());
    // Host reference.
    double sum = 0;
    for (int64_t i = 0; i < kCols; ++i) {
      for (int64_t j = 0; j < kRows; ++j) {
        float t = x[j * kCols + i];
        host_acc[i * kRows + j] += t;
        EXPECT_EQ(res.c[i * kRows + j], t) << "step " << k;
        EXPECT_EQ(res.c[(kCols + i) * kRows + j], t) << "step " << k;
        EXPECT_EQ(res.acc[i * kRows + j], host_acc[i * kRows + j]) << "step " << k;
        sum += static_cast<double>(host_acc[i * kRows + j]) * host_acc[i * kRows + j] + 2.0 * t * static_cast<double>(t);
      }
    }
    EXPECT_NEAR(res.s, sum, 1e-5 * sum) << "step " << k;
    out.push_back(std::move(res));
  }
  return out;
}

void ExpectSameBits(const std::vector<StepResult>& a, const std::vector<StepResult>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    EXPECT_EQ(std::memcmp(&a[k].s, &b[k].s, 4), 0) << "step " << k << ": " << a[k].s << " vs " << b[k].s;
    EXPECT_EQ(std::memcmp(a[k].acc.data(), b[k].acc.data(), a[k].acc.size() * 4), 0) << "step " << k;
    EXPECT_EQ(std::memcmp(a[k].c.data(), b[k].c.data(), a[k].c.size() * 4), 0) << "step " << k;
  }
}

std::unique_ptr<Executor> MakeExecutor(Program& p, Backend& be, std::optional<bool> graphs,
                                       ExecMemoryMode mode = ExecMemoryMode::kArena) {
  ExecutorOptions o;
  o.memory = mode;
  o.cuda_graphs = graphs;
  o.poison = true;
  auto e = Executor::Create(p, be, o);
  ZT_CHECK(e.ok()) << e.status().ToString();
  return std::move(*e);
}

TEST(CudaExecutor, GraphReplayIsBitIdenticalToEagerAndSeesNewInputs) {
  ZT_SKIP_WITHOUT_CUDA();
  auto be = MakeBackend();
  SmallStep a = BuildSmallStep(), b = BuildSmallStep();
  auto graphs = MakeExecutor(*a.program, *be, true);
  auto eager = MakeExecutor(*b.program, *be, false);
  EXPECT_TRUE(graphs->cuda_graphs());
  EXPECT_FALSE(eager->cuda_graphs());
  auto rg = RunSmallSteps(a, *graphs, 6);
  auto re = RunSmallSteps(b, *eager, 6);
  ExpectSameBits(rg, re);
  EXPECT_EQ(graphs->stats().eager_runs, 1) << "the first run is the warm-up";
  EXPECT_EQ(graphs->stats().graph_captures, 1);
  EXPECT_EQ(graphs->stats().graph_launches, 5);
  EXPECT_EQ(graphs->stats().capture_failures, 0);
  EXPECT_EQ(eager->stats().eager_runs, 6);
  EXPECT_EQ(eager->stats().graph_launches, 0);
}

TEST(CudaExecutor, SideStreamsJoinTheCapture) {
  ZT_SKIP_WITHOUT_CUDA();
  auto be = MakeBackend();
  SmallStep ref = BuildSmallStep();
  SmallStep multi = BuildSmallStep(/*transpose*/ 2, /*concat*/ 1, /*sum_squares*/ 1);
  auto e_ref = MakeExecutor(*ref.program, *be, false);
  auto e_multi = MakeExecutor(*multi.program, *be, true);
  auto r0 = RunSmallSteps(ref, *e_ref, 5);
  auto r1 = RunSmallSteps(multi, *e_multi, 5);
  ExpectSameBits(r0, r1);
  EXPECT_EQ(e_multi->stats().graph_captures, 1);
  EXPECT_EQ(e_multi->stats().capture_failures, 0);
  // Eager on several streams too.
  SmallStep multi2 = BuildSmallStep(1, 2, 2);
  auto e_multi2 = MakeExecutor(*multi2.program, *be, false);
  ExpectSameBits(r0, RunSmallSteps(multi2, *e_multi2, 5));
}

TEST(CudaExecutor, EachPhaseMaskGetsItsOwnGraph) {
  ZT_SKIP_WITHOUT_CUDA();
  auto be = MakeBackend();
  // forward: t = transpose(x); backward: acc += t; optimizer: s = sum_squares(acc)
  auto g = std::make_unique<ir::Graph>("phases");
  ir::Builder b(g.get());
  ir::Value* x = b.Input("x", DType::kF32, Shape{kRows, kCols});
  ir::Value* acc = b.State("acc", DType::kF32, Shape{kCols, kRows}, MemCategory::kGradients);
  ir::Value* t = ir::ops::Transpose(b, x, {1, 0}, "t");
  b.set_phase(ir::Phase::kBackward);
  ir::Value* acc2 = ir::ops::Accumulate(b, acc, t, "acc2");
  b.set_phase(ir::Phase::kOptimizer);
  ir::Value* s = ir::ops::SumSquares(b, {acc2}, "s");
  g->outputs() = {s};
  auto p = Program::Compile(std::move(g));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const ir::Graph& pg = (*p)->graph();
  auto ex = MakeExecutor(**p, *be, true);
  std::vector<float> zero(kRows * kCols, 0.0f), host_acc(kRows * kCols, 0.0f);
  ASSERT_TRUE(ex->Write(pg.FindValue("acc"), zero.data(), zero.size() * 4).ok());
  for (int step = 0; step < 4; ++step) {
    for (int micro = 0; micro < 3; ++micro) {
      std::vector<float> xv = testing::RandomUniform(kRows * kCols, 7 + 10 * step + micro);
      ASSERT_TRUE(ex->Write(pg.FindValue("x"), xv.data(), xv.size() * 4).ok());
      bool last = micro == 2;
      ASSERT_TRUE(ex->Run({true, true, last}).ok());
      for (int64_t i = 0; i < kCols; ++i)
        for (int64_t j = 0; j < kRows; ++j) host_acc[i * kRows + j] += xv[j * kCols + i];
    }
    float sv = 0;
    ASSERT_TRUE(ex->Read(pg.FindValue("s"), &sv, 4).ok());
    double want = 0;
    for (float a : host_acc) want += static_cast<double>(a) * a;
    EXPECT_NEAR(sv, want, 1e-5 * want) << "step " << step;
  }
  // Mask {fwd, bwd}: 8 runs (1 eager, 1 capture, 6 replays); mask all: 4 runs (1 eager, 1
  // capture, 2 replays).
  EXPECT_EQ(ex->stats().graph_captures, 2);
  EXPECT_EQ(ex->stats().eager_runs, 2);
  EXPECT_EQ(ex->stats().graph_launches, 10);
}

// A test-only op whose CUDA kernel synchronizes its stream (not allowed under capture) and then
// copies x to the output.
void RegisterUncapturableTestOp() {
  static const bool done = [] {
    ir::OpDef d;
    d.name = "cuda_test_sync_copy";
    d.input_names = {"x"};
    d.min_inputs = d.max_inputs = 1;
    d.infer = [](std::span<const ir::TypeSpec> in, const ir::AttrMap&) -> StatusOr<std::vector<ir::TypeSpec>> {
      return std::vector<ir::TypeSpec>{in[0]};
    };
    ir::OpRegistry::Global().Register(std::move(d));
    KernelRegistry::Global().Register("cuda_test_sync_copy", DeviceKind::kCUDA, [](const KernelContext& c) -> Status {
      cudaStream_t s = CudaStreamOf(c.stream);
      cudaError_t e = cudaStreamSynchronize(s);
      if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return Internal(std::string("cudaStreamSynchronize: ") + cudaGetErrorName(e));
      }
      e = cudaMemcpyAsync(c.outputs[0].data, c.inputs[0].data, c.inputs[0].nbytes(), cudaMemcpyDeviceToDevice, s);
      if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return Internal(std::string("cudaMemcpyAsync: ") + cudaGetErrorName(e));
      }
      return OkStatus();
    });
    return true;
  }();
  (void)done;
}

TEST(CudaExecutor, AFailedCaptureWarnsOnceAndRunsEagerly) {
  ZT_SKIP_WITHOUT_CUDA();
  RegisterUncapturableTestOp();
  auto be = MakeBackend();
  auto g = std::make_unique<ir::Graph>("uncapturable");
  ir::Builder b(g.get());
  ir::Value* x = b.Input("x", DType::kF32, Shape{kRows, kCols});
  ir::Value* t = ir::ops::Transpose(b, x, {1, 0}, "t");
  ir::Value* y = b.Emit1("cuda_test_sync_copy", {t}, {}, "y");
  ir::Value* s = ir::ops::SumSquares(b, {y}, "s");
  g->outputs() = {y, s};
  auto p = Program::Compile(std::move(g));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const ir::Graph& pg = (*p)->graph();
  auto ex = MakeExecutor(**p, *be, true);
  for (int k = 0; k < 4; ++k) {
    std::vector<float> xv = testing::RandomUniform(kRows * kCols, 50 + k);
    ASSERT_TRUE(ex->Write(pg.FindValue("x"), xv.data(), xv.size() * 4).ok());
    Status r = ex->Run();
    ASSERT_TRUE(r.ok()) << r.ToString();
    std::vector<float> yv(kRows * kCols);
    ASSERT_TRUE(ex->Read(pg.FindValue("y"), yv.data(), yv.size() * 4).ok());
    double want = 0;
    for (int64_t i = 0; i < kCols; ++i) {
      for (int64_t j = 0; j < kRows; ++j) {
        ASSERT_EQ(yv[i * kRows + j], xv[j * kCols + i]) << "run " << k;
        want += static_cast<double>(xv[j * kCols + i]) * xv[j * kCols + i];
      }
    }
    float sv = 0;
    ASSERT_TRUE(ex->Read(pg.FindValue("s"), &sv, 4).ok());
    EXPECT_NEAR(sv, want, 1e-5 * want);
  }
  EXPECT_EQ(ex->stats().capture_failures, 1);
  EXPECT_EQ(ex->stats().graph_captures, 0);
  EXPECT_EQ(ex->stats().eager_runs, 4);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

TEST(CudaExecutor, ZtCudaGraphsSettingSwitchesCapture) {
  ZT_SKIP_WITHOUT_CUDA();
  auto be = MakeBackend();
  SmallStep st = BuildSmallStep();
  {
    ScopedEnv e("ZT_CUDA_GRAPHS", nullptr);
    EXPECT_TRUE(MakeExecutor(*st.program, *be, std::nullopt)->cuda_graphs()) << "on by default";
  }
  {
    ScopedEnv e("ZT_CUDA_GRAPHS", "0");
    auto ex = MakeExecutor(*st.program, *be, std::nullopt);
    EXPECT_FALSE(ex->cuda_graphs());
    RunSmallSteps(st, *ex, 3);
    EXPECT_EQ(ex->stats().eager_runs, 3);
  }
  {
    ScopedEnv e("ZT_CUDA_GRAPHS", "sometimes");
    ExecutorOptions o;
    o.memory = ExecMemoryMode::kArena;
    auto ex = Executor::Create(*st.program, *be, o);
    ASSERT_FALSE(ex.ok());
    EXPECT_NE(ex.status().message().find("ZT_CUDA_GRAPHS"), std::string::npos) << ex.status().message();
  }
  // Dynamic memory mode never captures.
  auto dyn = MakeExecutor(*st.program, *be, true, ExecMemoryMode::kDynamic);
  EXPECT_FALSE(dyn->cuda_graphs());
}

TEST(CudaExecutor, DynamicModeMatchesArenaMode) {
  ZT_SKIP_WITHOUT_CUDA();
  auto be = MakeBackend();
  SmallStep a = BuildSmallStep(), b = BuildSmallStep(2, 1, 1);
  auto arena = MakeExecutor(*a.program, *be, false);
  auto dyn = MakeExecutor(*b.program, *be, false, ExecMemoryMode::kDynamic);
  ExpectSameBits(RunSmallSteps(a, *arena, 4), RunSmallSteps(b, *dyn, 4));
}

TEST(CudaExecutor, ArenaPeakEqualsThePlanAndStepsDoNotAllocate) {
  ZT_SKIP_WITHOUT_CUDA();
  auto be = MakeBackend();
  SmallStep st = BuildSmallStep();
  auto ex = MakeExecutor(*st.program, *be, true);
  RunSmallSteps(st, *ex, 1);
  int64_t mallocs = be->allocator_counters().device_mallocs;
  int64_t pinned = be->allocator_counters().pinned_mallocs;
  RunSmallSteps(st, *ex, 5);
  EXPECT_EQ(be->allocator_counters().device_mallocs, mallocs) << "no cudaMalloc after warm-up";
  EXPECT_EQ(be->allocator_counters().pinned_mallocs, pinned) << "Writes reuse their staging buffers";
  const auto& plan = st.program->plan();
  for (int c = 0; c < kNumMemCategories; ++c)
    EXPECT_EQ(be->stats().peak(static_cast<MemCategory>(c)), plan.arena_bytes[c]) << MemCategoryName(static_cast<MemCategory>(c));
  EXPECT_EQ(be->stats().peak_total(), plan.arena_total);
}

// ---- Tiny GPT-2 through the Engine ----

constexpr int64_t kVocab = 40, kSeq = 8;

models::Gpt2Config TinyConfig() {
  models::Gpt2Config c;
  c.vocab_size = kVocab;
  c.n_positions = kSeq;
  c.n_embd = 16;
  c.n_layer = 2;
  c.n_head = 2;
  return c;
}

struct TrainRun {
  std::unique_ptr<Engine> engine;
  int64_t micro;

  TrainRun(Backend& backend, const EngineOptions& o, int64_t micro_batch, std::optional<bool> graphs)
      : micro(micro_batch) {
    auto g = std::make_unique<ir::Graph>("gpt2");
    ir::Builder b(g.get());
    auto m = models::BuildGpt2(b, TinyConfig(), {.batch = micro, .seq = kSeq, .dtype = DType::kF32});
    ZT_CHECK(m.ok()) << m.status().ToString();
    ExecutorOptions eo;
    eo.memory = ExecMemoryMode::kArena;
    eo.cuda_graphs = graphs;
    auto e = Engine::Create(std::move(g), {m->tokens, m->targets, m->loss}, o, backend, {}, eo);
    ZT_CHECK(e.ok()) << e.status().ToString();
    engine = std::move(*e);
    ZT_CHECK_OK(engine->InitParams([](const std::string& name, const Tensor& host) {
      models::InitParam(name, host, {.std = 0.1, .n_layer = 2, .seed = 3});
    }));
  }

  StepStats Step(int64_t global_step) {
    int64_t global_batch = micro * engine->options().grad_accum;
    auto st = engine->TrainStep([&](int m, std::vector<int32_t>& tok, std::vector<int32_t>& tgt) {
      int64_t first = global_step * global_batch + m * micro;
      tok.resize(static_cast<size_t>(micro * kSeq));
      tgt.resize(tok.size());
      for (int64_t i = 0; i < micro; ++i) {
        auto ids = testing::RandomInts(kSeq + 1, 1000 + first + i, 0, kVocab);
        for (int64_t t = 0; t < kSeq; ++t) {
          tok[i * kSeq + t] = static_cast<int32_t>(ids[t]);
          tgt[i * kSeq + t] = static_cast<int32_t>(ids[t + 1]);
        }
      }
    });
    ZT_CHECK(st.ok()) << st.status().ToString();
    return *st;
  }

  std::vector<float> Params() {
    std::vector<float> all;
    ZT_CHECK_OK(engine->ReadParams([&](const std::string&, const Tensor& t) {
      all.insert(all.end(), t.as<float>(), t.as<float>() + t.numel());
    }));
    return all;
  }
};

EngineOptions BaseOptions(int64_t grad_accum) {
  EngineOptions o;
  o.optimizer.lr = 3e-3;
  o.optimizer.weight_decay = 0.01;
  o.gradient_clipping = 1.0;
  o.grad_accum = grad_accum;
  return o;
}

TEST(CudaExecutor, TinyGpt2MatchesTheCpuAndGraphReplayIsBitIdentical) {
  ZT_SKIP_WITHOUT_CUDA();
  constexpr int kSteps = 5;
  for (int64_t accum : {1, 2}) {
    SCOPED_TRACE("grad_accum " + std::to_string(accum));
    CpuBackend cpu;
    auto gpu_graphs = MakeBackend();
    auto gpu_eager = MakeBackend();
    TrainRun ref(cpu, BaseOptions(accum), 2, std::nullopt);
    TrainRun graphs(*gpu_graphs, BaseOptions(accum), 2, true);
    TrainRun eager(*gpu_eager, BaseOptions(accum), 2, false);
    int64_t mallocs_after_first = 0;
    for (int s = 0; s < kSteps; ++s) {
      StepStats a = ref.Step(s), b = graphs.Step(s), c = eager.Step(s);
      EXPECT_NEAR(a.loss, b.loss, 1e-4) << "step " << s;
      EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-4 * std::max(1.0, a.grad_norm)) << "step " << s;
      EXPECT_EQ(b.loss, c.loss) << "step " << s << ": graph replay must be bit-identical to eager";
      EXPECT_EQ(b.grad_norm, c.grad_norm) << "step " << s;
      if (s == 0) mallocs_after_first = gpu_graphs->allocator_counters().device_mallocs;
    }
    EXPECT_EQ(gpu_graphs->allocator_counters().device_mallocs, mallocs_after_first) << "no cudaMalloc after warm-up";
    const Executor& ex = graphs.engine->executor();
    EXPECT_TRUE(ex.cuda_graphs());
    EXPECT_EQ(ex.stats().capture_failures, 0);
    EXPECT_GE(ex.stats().graph_launches, kSteps - 2) << "later steps replay the captured graph";
    auto pg = graphs.Params(), pe = eager.Params(), pc = ref.Params();
    ASSERT_EQ(pg.size(), pe.size());
    ASSERT_EQ(pg.size(), pc.size());
    EXPECT_EQ(std::memcmp(pg.data(), pe.data(), pg.size() * 4), 0) << "parameters after graph replay differ from eager";
    double worst = 0;
    for (size_t i = 0; i < pg.size(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(pg[i] - pc[i])));
    // Adam divides by sqrt(v): where gradients are tiny, f32 summation-order differences move an
    // element by up to ~lr per step, so this is a loose bound (the losses are the tight check).
    EXPECT_LT(worst, 5e-3) << "parameters drifted from the CPU run";
    // The arena peak measured by the allocator is the plan's prediction.
    const auto& plan = graphs.engine->program().plan();
    for (int c = 0; c < kNumMemCategories; ++c) {
      EXPECT_EQ(gpu_graphs->stats().peak(static_cast<MemCategory>(c)), plan.arena_bytes[c])
          << MemCategoryName(static_cast<MemCategory>(c));
    }
    EXPECT_EQ(gpu_graphs->stats().peak_total(), plan.arena_total);
  }
}

#else

TEST(CudaExecutor, NotBuilt) { GTEST_SKIP() << "CUDA is not built"; }

#endif

}  // namespace
}  // namespace zt
