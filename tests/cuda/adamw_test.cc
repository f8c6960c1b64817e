// CUDA adamw and adamw_multi against the CPU reference over five steps of one graph run by two
// executors (CPU and GPU, the GPU's memory poisoned first): a plain step, a skipped step
// (grad_sumsq = +Inf), a clipped step with a gradient multiplier (fp16 loss scale 2), a skipped
// step (NaN), and a plain step with a new learning rate. adamw: parameters f32/bf16/f16,
// gradients f32/bf16, with and without f32 master weights; sizes 1, 7, 10007, around the
// 8-element vector steps (8, 9, 15, 16, 17, 23), GPT-2's parameter sizes and its token embedding
// (50257 x 768). The kernel repeats the CPU's rounded operations in order: every state agrees
// within 1e-6 relative (16-bit parameters within one ulp) and, checked too, bit for bit; a skipped
// step must leave every state bit-identical on the device. Misaligned tensors (ZeRO views into
// flat buffers) run directly. adamw_multi: 100 tensors (more than one launch's 48) of mixed sizes
// (1, 7, 768, 1000, 2^20 + 3, tails around 8 and around its 8192-element block chunks), bit for
// bit against the CPU (whose adamw_multi is k CPU adamw updates); 60 tensors of which two thirds
// are misaligned (the scalar path) next to aligned ones in the same launches, run directly; and
// k adamw nodes against one adamw_multi node, both on the GPU: identical bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "direct_kernel.h"
#include "ir/ops/adamw.h"
#include "runtime/executor.h"
#include "runtime/program.h"
#include "support/adamw_graph.h"
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

// The tensors of a test with this file's hyperparameters (values p<x>, g<x>, m<x>, v<x>, w<x>).
testing::AdamWTensors Tensors(DType param, DType grad, bool master, std::vector<std::pair<std::string, int64_t>> sizes) {
  testing::AdamWTensors t{param, grad, master, std::move(sizes)};
  t.beta1 = kBeta1;
  t.beta2 = kBeta2;
  t.eps = kEps;
  t.weight_decay = kWeightDecay;
  return t;
}

// One adamw node on p, g, m, v (and w).
std::unique_ptr<ir::Graph> BuildGraph(const Config& c) {
  return testing::BuildAdamWGraph(Tensors(c.param, c.grad, c.master, {{"", c.n}}), false);
}

// A reference program (on the CPU, or with ref_on_gpu on the GPU too) and a program on the GPU,
// whose memory is poisoned first; both get the same inputs.
struct Twin {
  std::unique_ptr<Backend> ref_backend, gpu = testing::MakeCudaBackend();
  std::unique_ptr<Program> prog_ref, prog_gpu;
  std::unique_ptr<Executor> exec_ref, exec_gpu;

  Twin(std::unique_ptr<ir::Graph> ref_graph, std::unique_ptr<ir::Graph> gpu_graph, bool ref_on_gpu = false) {
    ref_backend = ref_on_gpu ? testing::MakeCudaBackend() : std::make_unique<CpuBackend>();
    CompileOptions co;
    co.dead_code_elimination = false;
    if (ref_on_gpu) co.target = ir::Target::kCuda;
    prog_ref = std::move(Program::Compile(std::move(ref_graph), co)).value();
    co.target = ir::Target::kCuda;
    prog_gpu = std::move(Program::Compile(std::move(gpu_graph), co)).value();
    ExecutorOptions eo;
    eo.memory = ExecMemoryMode::kArena;
    eo.poison = ref_on_gpu;
    exec_ref = std::move(Executor::Create(*prog_ref, *ref_backend, eo)).value();
    eo.poison = true;
    exec_gpu = std::move(Executor::Create(*prog_gpu, *gpu, eo)).value();
  }
  explicit Twin(const Config& c) : Twin(BuildGraph(c), BuildGraph(c)) {}
  void Write(const std::string& name, const std::vector<char>& bytes) {
    ZT_CHECK_OK(exec_ref->Write(prog_ref->graph().FindValue(name), bytes.data(), bytes.size()));
    ZT_CHECK_OK(exec_gpu->Write(prog_gpu->graph().FindValue(name), bytes.data(), bytes.size()));
  }
  void Run() {
    ZT_CHECK_OK(exec_ref->Run());
    ZT_CHECK_OK(exec_gpu->Run());
  }
  static std::vector<char> Read(Executor& e, const Program& p, const std::string& name) {
    const ir::Value* v = p.graph().FindValue(name);
    std::vector<char> b(v->nbytes());
    ZT_CHECK_OK(e.Read(v, b.data(), b.size()));
    return b;
  }
  std::vector<char> Ref(const std::string& name) { return Read(*exec_ref, *prog_ref, name); }
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
const Step kSteps[] = {{1e-2, 1.0, 0.0, 4.0f, false},
                       {1e-2, 1.0, 1.0, std::numeric_limits<float>::infinity(), true},
                       {3e-2, 0.5, 1.0, 25.0f, false},  // true norm 2.5 -> clip by 1/(2.5 + 1e-6)
                       {3e-2, 0.5, 1.0, std::nanf(""), true},
                       {5e-3, 1.0, 100.0, 9.0f, false}};

// kSteps on both programs of `t`; every state compared after every step.
void RunSteps(Twin& t, const testing::AdamWTensors& ts) {
  std::vector<std::pair<std::string, DType>> states;  // name, dtype
  for (size_t k = 0; k < ts.suffix_and_size.size(); ++k) {
    const auto& [sfx, n] = ts.suffix_and_size[k];
    auto p0 = testing::RandomUniform(n, 1 + k, -2.0f, 2.0f);
    t.Write("p" + sfx, testing::ToBytes(ts.param, p0));
    t.Write("m" + sfx, F32Bytes(std::vector<float>(n, 0.0f)));
    t.Write("v" + sfx, F32Bytes(std::vector<float>(n, 0.0f)));
    if (ts.master) t.Write("w" + sfx, F32Bytes(testing::RoundTo(ts.param, p0)));
    states.push_back({"p" + sfx, ts.param});
    states.push_back({"m" + sfx, DType::kF32});
    states.push_back({"v" + sfx, DType::kF32});
    if (ts.master) states.push_back({"w" + sfx, DType::kF32});
  }
  int t_adam = 0;
  for (size_t k = 0; k < std::size(kSteps); ++k) {
    const Step& s = kSteps[k];
    SCOPED_TRACE("step " + std::to_string(k + 1) + (s.skipped ? " (skipped)" : ""));
    if (!s.skipped) ++t_adam;
    for (size_t i = 0; i < ts.suffix_and_size.size(); ++i) {
      const auto& [sfx, n] = ts.suffix_and_size[i];
      auto grad = testing::RandomUniform(n, 100 + k + 1000 * i, -1.0f, 1.0f);
      grad[0] = 0.0f;  // a zero gradient: only decay moves it
      t.Write("g" + sfx, testing::ToBytes(ts.grad, grad));
    }
    t.Write("s", F32Bytes(Scalars(s.lr, std::max(t_adam, 1), s.mult, s.max_norm)));
    t.Write("ss", F32Bytes({s.grad_sumsq}));
    std::vector<std::vector<char>> before;
    for (const auto& st : states) before.push_back(t.Gpu(st.first));
    t.Run();
    for (size_t i = 0; i < states.size(); ++i) {
      const auto& [name, dt] = states[i];
      auto got = t.Gpu(name);
      auto ref = t.Ref(name);
      testing::ExpectNear(name, dt, ref, got, name[0] == 'p' ? ParamTol(dt) : Tolerance{1e-12, 1e-6});
      // Stronger than the tolerance: the kernel repeats the CPU's rounded operations one for one
      // (a failure here alone means an FMA contraction or a reordering crept in, on either side).
      testing::ExpectBitwiseEqual(name + " (bitwise)", dt, ref, got);
      if (s.skipped) testing::ExpectBitwiseEqual(name + " across a skipped step", dt, before[i], got);
    }
  }
}

void RunSteps(const Config& c) {
  SCOPED_TRACE(Name(c));
  Twin t(c);
  RunSteps(t, Tensors(c.param, c.grad, c.master, {{"", c.n}}));
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

// An input of a direct kernel run: `v` as dtype, placed `offset` bytes past an aligned address.
testing::DirectTensor MakeDirect(DType dt, const std::vector<float>& v, size_t offset) {
  testing::DirectTensor t;
  t.dtype = dt;
  t.shape = Shape{static_cast<int64_t>(v.size())};
  t.bytes = testing::ToBytes(dt, v);
  t.offset = offset;
  return t;
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
        auto mk = MakeDirect;
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

// `count` tensors of mixed sizes: single elements, odd sizes, GPT-2's 768, tails around the
// 8-element vectors and the 8192-element block chunks, and two of 2^20 + 3 elements.
std::vector<std::pair<std::string, int64_t>> MixedSizes(int count) {
  const int64_t cycle[] = {1, 7, 768, 1000, 8, 9, 8191, 8192, 8193, 16391, 23};
  std::vector<std::pair<std::string, int64_t>> out;
  for (int i = 0; i < count; ++i) {
    int64_t n = cycle[i % std::size(cycle)];
    if (i == 3 || i == 57) n = (int64_t{1} << 20) + 3;
    out.push_back({std::to_string(i), n});
  }
  return out;
}

std::string Name(const testing::AdamWTensors& ts) {
  return std::string("param ") + DTypeName(ts.param) + " grad " + DTypeName(ts.grad) + (ts.master ? " +master" : "") +
         ", " + std::to_string(ts.suffix_and_size.size()) + " tensors";
}

// 100 tensors: three launches (48 + 48 + 4) of one node, against the CPU's adamw_multi.
TEST(CudaAdamWMulti, ManyTensorsOfMixedSizesMatchCpu) {
  ZT_SKIP_WITHOUT_CUDA();
  const Config configs[] = {{DType::kBF16, DType::kBF16, true, 0}, {DType::kF32, DType::kF32, false, 0},
                            {DType::kBF16, DType::kF32, true, 0},  {DType::kF16, DType::kBF16, false, 0},
                            {DType::kF32, DType::kBF16, true, 0}};
  for (const Config& c : configs) {
    const testing::AdamWTensors ts = Tensors(c.param, c.grad, c.master, MixedSizes(100));
    SCOPED_TRACE(Name(ts));
    Twin t(testing::BuildAdamWGraph(ts, true), testing::BuildAdamWGraph(ts, true));
    ASSERT_EQ(t.prog_gpu->graph().nodes().size(), 1u);
    ASSERT_EQ(t.prog_gpu->graph().nodes()[0]->op->name, "adamw_multi");
    RunSteps(t, ts);
  }
}

// k adamw nodes and one adamw_multi node over the same tensors, both on the GPU: the same bytes.
TEST(CudaAdamWMulti, SameBytesAsSeparateAdamWNodesOnTheGpu) {
  ZT_SKIP_WITHOUT_CUDA();
  const Config configs[] = {{DType::kBF16, DType::kBF16, true, 0}, {DType::kF32, DType::kF32, false, 0}};
  for (const Config& c : configs) {
    const testing::AdamWTensors ts = Tensors(c.param, c.grad, c.master, MixedSizes(60));
    SCOPED_TRACE(Name(ts));
    Twin t(testing::BuildAdamWGraph(ts, false), testing::BuildAdamWGraph(ts, true), /*ref_on_gpu=*/true);
    ASSERT_EQ(t.prog_ref->graph().nodes().size(), 60u);
    ASSERT_EQ(t.prog_gpu->graph().nodes().size(), 1u);
    RunSteps(t, ts);
  }
}

// Misaligned tensors (the scalar path) next to aligned ones in the same launches, run directly,
// in place: a clipped step and a skipped one (which must leave every byte as it was).
TEST(CudaAdamWMulti, MisalignedNextToAlignedTensors) {
  ZT_SKIP_WITHOUT_CUDA();
  std::unique_ptr<Backend> cuda = testing::MakeCudaBackend();
  CpuBackend cpu;
  const int64_t cycle[] = {4099, 7, 1, 8200, 768, 16, 8193};  // 7 sizes: each aligned and misaligned
  for (DType pt : {DType::kF32, DType::kBF16}) {
    for (bool master : {false, true}) {
      for (int64_t k : {int64_t{48}, int64_t{60}}) {
        for (float sumsq : {30.0f, std::numeric_limits<float>::infinity()}) {
          SCOPED_TRACE(std::string(DTypeName(pt)) + (master ? " +master" : "") + " k " + std::to_string(k) +
                       " grad_sumsq " + std::to_string(sumsq));
          const ir::AdamWMultiLayout l{k, master};
          std::vector<testing::DirectTensor> in(static_cast<size_t>(l.inputs()));
          in[l.kScalarsInput] = MakeDirect(DType::kF32, Scalars(1e-3, 3, 0.5, 1.0), 4);
          in[l.kGradSumsqInput] = MakeDirect(DType::kF32, {sumsq}, 4);
          for (int64_t i = 0; i < k; ++i) {
            const int64_t n = cycle[i % std::size(cycle)];
            const size_t off = i % 3 == 0 ? 0 : 4 * (1 + (i / 3) % 3);  // bytes: 0 (aligned), 4, 8, 12
            const size_t poff = pt == DType::kF32 ? off : off / 2;
            auto p = testing::RandomUniform(n, 1 + i, -2.0f, 2.0f);
            in[l.param(i)] = MakeDirect(pt, p, poff);
            in[l.grad(i)] = MakeDirect(pt, testing::RandomUniform(n, 1000 + i), poff);
            in[l.exp_avg(i)] = MakeDirect(DType::kF32, testing::RandomUniform(n, 2000 + i, -0.1f, 0.1f), off);
            in[l.exp_avg_sq(i)] = MakeDirect(DType::kF32, testing::RandomUniform(n, 3000 + i, 0.0f, 0.01f), off ? 16 - off : 0);
            if (master) in[l.master(i)] = MakeDirect(DType::kF32, testing::RoundTo(pt, p), off);
          }
          std::vector<testing::DirectTensor> out(static_cast<size_t>(l.outputs()));
          for (size_t o = 0; o < out.size(); ++o) {
            out[o].dtype = in[o + ir::kAdamWMultiShift].dtype;
            out[o].shape = in[o + ir::kAdamWMultiShift].shape;
            out[o].alias_input = static_cast<int>(o + ir::kAdamWMultiShift);
          }
          ir::AttrMap attrs{{"tensors", k}, {"beta1", kBeta1}, {"beta2", kBeta2}, {"eps", kEps}, {"weight_decay", kWeightDecay}};
          auto ref = testing::RunKernelDirect(cpu, "adamw_multi", attrs, in, out);
          auto got = testing::RunKernelDirect(*cuda, "adamw_multi", attrs, in, out);
          for (size_t o = 0; o < out.size(); ++o) {
            const std::string what = "adamw_multi output " + std::to_string(o);
            testing::ExpectBitwiseEqual(what + " (bitwise)", out[o].dtype, ref[o], got[o]);
            if (std::isinf(sumsq)) {
              testing::ExpectBitwiseEqual(what + " across a skipped step", out[o].dtype, in[o + 2].bytes, got[o]);
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace zt
