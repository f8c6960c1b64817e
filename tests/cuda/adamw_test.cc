// CUDA adamw against the CPU reference over five steps of one graph run by two executors (CPU and
// GPU, the GPU's memory poisoned first): a plain step, a skipped step (grad_sumsq = +Inf), a
// clipped step with a gradient multiplier (fp16 loss scale 2), a skipped step (NaN), and a plain
// step with a new learning rate. Parameters f32/bf16/f16, gradients f32/bf16, with and without
// f32 master weights; sizes 1, 7, 10007, around the 8-element vector steps (8, 9, 15, 16, 17, 23),
// GPT-2's parameter sizes and its token embedding (50257 x 768). The kernel repeats the CPU's
// rounded operations in order: every state agrees within 1e-6 relative (16-bit parameters within
// one ulp) and, checked too, bit for bit; a skipped step must leave every state bit-identical on
// the device. Misaligned tensors (ZeRO views into flat buffers) run directly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "direct_kernel.h"
#include "ir/ops/adamw.h"
#include "runtime/executor.h"
#include "runtime/program.h"
#include "support/device_compare.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::Tolerance;

constexpr double kBeta1 = 0.9, kBeta2 = 0.95, kEps = 1e-8, kWeightDecay = 0.1;

struct Config {
  DType param, grad;
  bool master;
  int64_t n;
};

std::string Name(const Config& c) {
  return std::string("param ") + DTypeName(c.param) + " grad " + DTypeName(c.grad) + (c.master ? " +master" : "") +
         " n " + std::to_string(c.n);
}

std::unique_ptr<ir::Graph> BuildGraph(const Config& c) {
  auto g = std::make_unique<ir::Graph>("adamw");
  ir::Builder b(g.get());
  std::vector<ir::Value*> in = {b.Param("p", c.param, Shape{c.n}), b.Input("g", c.grad, Shape{c.n}),
                                b.State("m", DType::kF32, Shape{c.n}, MemCategory::kOptimizerState),
                                b.State("v", DType::kF32, Shape{c.n}, MemCategory::kOptimizerState),
                                b.Input("s", DType::kF32, Shape{ir::kAdamWScalars}), b.Input("ss", DType::kF32, Shape{})};
  if (c.master) in.push_back(b.State("w", DType::kF32, Shape{c.n}, MemCategory::kOptimizerState));
  b.set_phase(ir::Phase::kOptimizer);
  b.Emit("adamw", in, {{"beta1", kBeta1}, {"beta2", kBeta2}, {"eps", kEps}, {"weight_decay", kWeightDecay}}, "upd");
  return g;
}

// One graph, compiled and run on the CPU and on the GPU.
struct Twin {
  CpuBackend cpu;
  std::unique_ptr<Backend> gpu = testing::MakeCudaBackend();
  std::unique_ptr<Program> prog_cpu, prog_gpu;
  std::unique_ptr<Executor> exec_cpu, exec_gpu;

  explicit Twin(const Config& c) {
    CompileOptions co;
    co.dead_code_elimination = false;
    prog_cpu = std::move(Program::Compile(BuildGraph(c), co)).value();
    prog_gpu = std::move(Program::Compile(BuildGraph(c), co)).value();
    ExecutorOptions eo;
    eo.memory = ExecMemoryMode::kArena;
    exec_cpu = std::move(Executor::Create(*prog_cpu, cpu, eo)).value();
    eo.poison = true;
    exec_gpu = std::move(Executor::Create(*prog_gpu, *gpu, eo)).value();
  }
  void Write(const std::string& name, const std::vector<char>& bytes) {
    ZT_CHECK_OK(exec_cpu->Write(prog_cpu->graph().FindValue(name), bytes.data(), bytes.size()));
    ZT_CHECK_OK(exec_gpu->Write(prog_gpu->graph().FindValue(name), bytes.data(), bytes.size()));
  }
  void Run() {
    ZT_CHECK_OK(exec_cpu->Run());
    ZT_CHECK_OK(exec_gpu->Run());
  }
  static std::vector<char> Read(Executor& e, const Program& p, const std::string& name) {
    const ir::Value* v = p.graph().FindValue(name);
    std::vector<char> b(v->nbytes());
    ZT_CHECK_OK(e.Read(v, b.data(), b.size()));
    return b;
  }
  std::vector<char> Cpu(const std::string& name) { return Read(*exec_cpu, *prog_cpu, name); }
  std::vector<char> Gpu(const std::string& name) { return Read(*exec_gpu, *prog_gpu, name); }
};

std::vector<char> F32Bytes(const std::vector<float>& v) { return testing::ToBytes(DType::kF32, v); }

std::vector<float> Scalars(double lr, int t, double mult, double max_norm) {
  return {static_cast<float>(lr), static_cast<float>(1 - std::pow(kBeta1, t)),
          static_cast<float>(1 - std::pow(kBeta2, t)), static_cast<float>(mult), static_cast<float>(max_norm)};
}

Tolerance ParamTol(DType t) {
  switch (t) {
    case DType::kBF16: return {1e-12, 1.0 / 128};  // one bf16 ulp
    case DType::kF16: return {1e-12, 1.0 / 1024};
    default: return {1e-12, 1e-6};
  }
}

struct Step {
  double lr, mult, max_norm;
  float grad_sumsq;
  bool skipped;
};

void RunSteps(const Config& c) {
  SCOPED_TRACE(Name(c));
  Twin t(c);
  auto p0 = testing::RandomUniform(c.n, 1, -2.0f, 2.0f);
  t.Write("p", testing::ToBytes(c.param, p0));
  t.Write("m", F32Bytes(std::vector<float>(c.n, 0.0f)));
  t.Write("v", F32Bytes(std::vector<float>(c.n, 0.0f)));
  if (c.master) t.Write("w", F32Bytes(testing::RoundTo(c.param, p0)));
  const float inf = std::numeric_limits<float>::infinity();
  const Step steps[] = {{1e-2, 1.0, 0.0, 4.0f, false},   {1e-2, 1.0, 1.0, inf, true},
                        {3e-2, 0.5, 1.0, 25.0f, false},  // true norm 2.5 -> clip by 1/(2.5 + 1e-6)
                        {3e-2, 0.5, 1.0, std::nanf(""), true},
                        {5e-3, 1.0, 100.0, 9.0f, false}};
  int t_adam = 0;
  std::vector<std::string> states = {"p", "m", "v"};
  if (c.master) states.push_back("w");
  for (size_t k = 0; k < std::size(steps); ++k) {
    const Step& s = steps[k];
    SCOPED_TRACE("step " + std::to_string(k + 1) + (s.skipped ? " (skipped)" : ""));
    if (!s.skipped) ++t_adam;
    auto grad = testing::RandomUniform(c.n, 100 + k, -1.0f, 1.0f);
    grad[0] = 0.0f;  // a zero gradient: only decay moves it
    t.Write("g", testing::ToBytes(c.grad, grad));
    t.Write("s", F32Bytes(Scalars(s.lr, std::max(t_adam, 1), s.mult, s.max_norm)));
    t.Write("ss", F32Bytes({s.grad_sumsq}));
    std::vector<std::vector<char>> before;
    for (const auto& name : states) before.push_back(t.Gpu(name));
    t.Run();
    for (size_t i = 0; i < states.size(); ++i) {
      const std::string& name = states[i];
      DType dt = name == "p" ? c.param : DType::kF32;
      auto got = t.Gpu(name);
      auto ref = t.Cpu(name);
      testing::ExpectNear(name, dt, ref, got, name == "p" ? ParamTol(dt) : Tolerance{1e-12, 1e-6});
      // Stronger than the tolerance: the kernel repeats the CPU's rounded operations one for one
      // (a failure here alone means an FMA contraction or a reordering crept in, on either side).
      testing::ExpectBitwiseEqual(name + " (bitwise)", dt, ref, got);
      if (s.skipped) testing::ExpectBitwiseEqual(name + " across a skipped step", dt, before[i], got);
    }
  }
}

TEST(CudaAdamW, FiveStepsMatchCpu) {
  ZT_SKIP_WITHOUT_CUDA();
  const Config configs[] = {
      {DType::kF32, DType::kF32, false, 0},  {DType::kBF16, DType::kBF16, false, 0}, {DType::kBF16, DType::kBF16, true, 0},
      {DType::kF16, DType::kF32, true, 0},   {DType::kBF16, DType::kF32, true, 0},   {DType::kF32, DType::kBF16, false, 0},
  };
  for (Config c : configs) {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{10007}}) {
      c.n = n;
      RunSteps(c);
    }
  }
}

// Around the 8-element vector steps (tails of 0..7 elements) and GPT-2 124M's parameter sizes
// (biases and norms 768, 2304, 3072; position embedding 1024 x 768; attention and MLP matrices).
TEST(CudaAdamW, VectorTailsAndGpt2Sizes) {
  ZT_SKIP_WITHOUT_CUDA();
  for (int64_t n : {8, 9, 15, 16, 17, 23, 768, 2304, 3072}) {
    RunSteps({DType::kBF16, DType::kBF16, true, n});
    RunSteps({DType::kF32, DType::kF32, false, n});
    RunSteps({DType::kF16, DType::kBF16, false, n});
  }
  for (int64_t n : {int64_t{1024} * 768, int64_t{768} * 2304, int64_t{768} * 3072}) {
    RunSteps({DType::kBF16, DType::kBF16, true, n});
  }
}

TEST(CudaAdamW, Gpt2TokenEmbedding) {
  ZT_SKIP_WITHOUT_CUDA();
  RunSteps({DType::kBF16, DType::kBF16, true, 50257 * 768});
}

// Views into flat buffers start at any element: every tensor misaligned, run directly, in place.
TEST(CudaAdamW, MisalignedInPlace) {
  ZT_SKIP_WITHOUT_CUDA();
  std::unique_ptr<Backend> cuda = testing::MakeCudaBackend();
  CpuBackend cpu;
  for (DType pt : {DType::kF32, DType::kBF16}) {
    for (bool master : {false, true}) {
      for (size_t off : {size_t{4}, size_t{8}, size_t{12}}) {
        const int64_t n = 4099;
        SCOPED_TRACE(std::string(DTypeName(pt)) + (master ? " +master" : "") + " offset " + std::to_string(off));
        auto mk = [&](DType dt, std::vector<float> v, size_t o) {
          testing::DirectTensor t;
          t.dtype = dt;
          t.shape = Shape{static_cast<int64_t>(v.size())};
          t.bytes = testing::ToBytes(dt, v);
          t.offset = o;
          return t;
        };
        auto p = testing::RandomUniform(n, 1, -2.0f, 2.0f);
        auto m = testing::RandomUniform(n, 2, -0.1f, 0.1f);
        auto v = testing::RandomUniform(n, 3, 0.0f, 0.01f);
        std::vector<testing::DirectTensor> in = {
            mk(pt, p, pt == DType::kF32 ? off : off / 2), mk(pt, testing::RandomUniform(n, 4), 0), mk(DType::kF32, m, off),
            mk(DType::kF32, v, 16 - off), mk(DType::kF32, Scalars(1e-3, 3, 0.5, 1.0), off),
            mk(DType::kF32, {30.0f}, off)};
        if (master) in.push_back(mk(DType::kF32, testing::RoundTo(pt, p), off));
        std::vector<testing::DirectTensor> out(master ? 4 : 3);
        const int alias[] = {0, 2, 3, 6};
        for (size_t k = 0; k < out.size(); ++k) {
          out[k].dtype = in[alias[k]].dtype;
          out[k].shape = in[alias[k]].shape;
          out[k].alias_input = alias[k];
        }
        ir::AttrMap attrs{{"beta1", kBeta1}, {"beta2", kBeta2}, {"eps", kEps}, {"weight_decay", kWeightDecay}};
        auto ref = testing::RunKernelDirect(cpu, "adamw", attrs, in, out);
        auto got = testing::RunKernelDirect(*cuda, "adamw", attrs, in, out);
        for (size_t k = 0; k < out.size(); ++k) {
          testing::ExpectNear("adamw output " + std::to_string(k), out[k].dtype, ref[k], got[k],
                              k == 0 ? ParamTol(pt) : Tolerance{1e-12, 1e-6});
          testing::ExpectBitwiseEqual("adamw output " + std::to_string(k) + " (bitwise)", out[k].dtype, ref[k], got[k]);
        }
      }
    }
  }
}

}  // namespace
}  // namespace zt
