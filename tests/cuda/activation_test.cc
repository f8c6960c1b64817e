// CUDA activations (gelu, silu, swiglu and their backward ops) against the CPU reference, for
// f32/bf16/f16: forward values and gradients through autodiff, odd sizes (1, 7, 33, 1000 and
// sizes off the 16-byte vector), inputs far into saturation (|x| up to 40, where gelu' must drop
// its sech^2 term and the sigmoid must not overflow), the GPT-2 MLP (16384 x 3072) and the
// Llama-8B MLP (2048 x 14336) shapes; direct runs on misaligned tensors (the scalar path).
#include <gtest/gtest.h>

#include "direct_kernel.h"
#include "ir/ops/activation.h"
#include "support/device_compare.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::CompareOptions;
using testing::CompareWithCpu;
using testing::DirectTensor;

const DType kFloatTypes[] = {DType::kF32, DType::kBF16, DType::kF16};

enum class Act { kGelu, kSilu, kSwiGlu };
const char* Name(Act a) { return a == Act::kGelu ? "gelu" : a == Act::kSilu ? "silu" : "swiglu"; }

void CompareAct(Act a, DType dt, const Shape& s, bool gradients, float lo, float hi) {
  SCOPED_TRACE(std::string(Name(a)) + " " + DTypeName(dt) + " " + s.ToString() + (gradients ? " with gradients" : "") +
               " range " + std::to_string(lo) + ".." + std::to_string(hi));
  CompareOptions o;
  o.gradients = gradients;
  std::vector<testing::DeviceInput> in = {{"x", s, dt, lo, hi}};
  if (a == Act::kSwiGlu) in.push_back({"up", s, dt, lo, hi});
  CompareWithCpu(in,
                 [a](ir::Builder& b, const std::vector<ir::Value*>& v) {
                   switch (a) {
                     case Act::kGelu: return std::vector<ir::Value*>{ir::ops::Gelu(b, v[0], "y")};
                     case Act::kSilu: return std::vector<ir::Value*>{ir::ops::Silu(b, v[0], "y")};
                     default: return std::vector<ir::Value*>{ir::ops::SwiGlu(b, v[0], v[1], "y")};
                   }
                 },
                 o);
}

TEST(CudaActivation, ForwardAndGradientsMatchCpu) {
  ZT_SKIP_WITHOUT_CUDA();
  const Shape shapes[] = {{1}, {7}, {33}, {3, 1000}, {5, 1001}, {2, 3, 17}};
  for (Act a : {Act::kGelu, Act::kSilu, Act::kSwiGlu}) {
    for (DType dt : kFloatTypes) {
      for (const Shape& s : shapes) {
        CompareAct(a, dt, s, false, -6.0f, 6.0f);
        CompareAct(a, dt, s, true, -6.0f, 6.0f);
      }
    }
  }
}

TEST(CudaActivation, Saturation) {
  ZT_SKIP_WITHOUT_CUDA();
  for (Act a : {Act::kGelu, Act::kSilu, Act::kSwiGlu}) {
    for (DType dt : kFloatTypes) CompareAct(a, dt, Shape{4, 1000}, true, -40.0f, 40.0f);
  }
}

TEST(CudaActivation, ModelShapes) {
  ZT_SKIP_WITHOUT_CUDA();
  CompareAct(Act::kGelu, DType::kBF16, Shape{16384, 3072}, true, -4.0f, 4.0f);  // GPT-2 124M MLP
  CompareAct(Act::kSwiGlu, DType::kBF16, Shape{2048, 14336}, true, -4.0f, 4.0f);  // Llama-8B MLP
}

// ---- Direct runs on misaligned tensors ----

std::unique_ptr<Backend>& Cuda() {
  static std::unique_ptr<Backend> b = testing::MakeCudaBackend();
  return b;
}

DirectTensor In(DType dt, Shape s, uint64_t seed, size_t offset) {
  DirectTensor t;
  t.dtype = dt;
  t.shape = std::move(s);
  t.bytes = testing::ToBytes(dt, testing::RandomUniform(t.shape.numel(), seed, -6.0f, 6.0f));
  t.offset = offset;
  return t;
}

DirectTensor Out(DType dt, Shape s, size_t offset) {
  DirectTensor t;
  t.dtype = dt;
  t.shape = std::move(s);
  t.offset = offset;
  return t;
}

TEST(CudaActivation, MisalignedTensors) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    const size_t es = DTypeSize(dt);
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000}, int64_t{4099}}) {
      for (size_t off : {es, 16 - es}) {
        SCOPED_TRACE(std::string(DTypeName(dt)) + " n " + std::to_string(n) + " offset " + std::to_string(off));
        const Shape s{n};
        const std::pair<const char*, int> ops[] = {{"gelu", 1}, {"gelu_bwd", 2}, {"silu", 1},
                                                   {"silu_bwd", 2}, {"swiglu", 2}, {"swiglu_bwd", 3}};
        for (auto [op, inputs] : ops) {
          std::vector<DirectTensor> in;
          // The first input misaligned, the others aligned (the kernel must fall back to scalars).
          for (int i = 0; i < inputs; ++i) in.push_back(In(dt, s, 100 + i, i == 0 ? off : 0));
          std::vector<DirectTensor> out = {Out(dt, s, 0)};
          if (std::string(op) == "swiglu_bwd") out.push_back(Out(dt, s, off));
          CpuBackend cpu;
          auto ref = testing::RunKernelDirect(cpu, op, {}, in, out);
          auto got = testing::RunKernelDirect(*Cuda(), op, {}, in, out);
          for (size_t k = 0; k < ref.size(); ++k) {
            testing::ExpectNear(std::string(op) + " output " + std::to_string(k), dt, ref[k], got[k],
                                testing::DefaultTolerance(dt));
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace zt
