// CUDA rmsnorm / rmsnorm_bwd against the CPU reference: y and rstd (f32) and the gradients of x
// and w through autodiff, for f32/bf16/f16, odd widths (C = 1, 7, 33, 4097: the scalar path),
// vector widths (768, 1000, 4096), wide rows that take the loop kernels (12000 in the backward,
// 20000 in both), 1 and 3 rows, rank-3 inputs, and the Llama-8B shape (2048 x 4096); BackwardPaths
// covers every backward kernel class with 1, 7, 33 and many rows. Direct runs reach the misaligned
// (scalar) path, zero rows (dw = 0), and check that the backward is bit-identical from run to run.
// The fused residual forms (add_rmsnorm; rmsnorm_bwd with dresidual) against the CPU on the same
// paths (and the GPT-2 and Llama shapes), misaligned a, b, sum or dresidual alone (each forces the
// scalar path), and bit for bit against rmsnorm / rmsnorm_bwd followed by `add` on CUDA
// (norm_test_util.h).
#include <gtest/gtest.h>

#include "direct_kernel.h"
#include "ir/ops/rmsnorm.h"
#include "norm_test_util.h"
#include "support/device_compare.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::CompareOptions;
using testing::CompareWithCpu;
using testing::DirectTensor;
using testing::kRmsNormFamily;

const auto& kFloatTypes = testing::kNormFloatTypes;

std::vector<ir::Value*> BuildRmsNorm(ir::Builder& b, const std::vector<ir::Value*>& v) {
  auto r = ir::ops::RmsNorm(b, v[0], v[1], 1e-6, "rms");
  return {r.y, r.rstd};
}

void CompareRmsNorm(DType dt, const Shape& x, bool gradients) {
  SCOPED_TRACE(std::string(DTypeName(dt)) + " x " + x.ToString() + (gradients ? " with gradients" : ""));
  CompareOptions o;
  o.gradients = gradients;
  CompareWithCpu({{"x", x, dt, -1.0f, 1.0f}, {"w", Shape{x[-1]}, dt, 0.5f, 1.5f}}, BuildRmsNorm, o);
}

TEST(CudaRmsNorm, ForwardMatchesCpu) {
  ZT_SKIP_WITHOUT_CUDA();
  const Shape shapes[] = {{1, 1},    {3, 7},    {1, 33},    {3, 768},   {7, 1000},
                          {5, 4097}, {2, 4096}, {3, 12000}, {2, 20000}, {2, 3, 33}};
  for (DType dt : kFloatTypes) {
    for (const Shape& s : shapes) CompareRmsNorm(dt, s, false);
  }
}

TEST(CudaRmsNorm, GradientsMatchCpu) {
  ZT_SKIP_WITHOUT_CUDA();
  const Shape shapes[] = {{1, 1}, {3, 7}, {1, 33}, {3, 768}, {64, 1000}, {5, 4097}, {9, 4096}, {3, 12000}, {2, 20000}};
  for (DType dt : kFloatTypes) {
    for (const Shape& s : shapes) CompareRmsNorm(dt, s, true);
  }
}

TEST(CudaRmsNorm, Llama8bShape) {
  ZT_SKIP_WITHOUT_CUDA();
  CompareRmsNorm(DType::kBF16, Shape{1, 2048, 4096}, true);
  CompareRmsNorm(DType::kF32, Shape{2048, 4096}, true);
}

// Every backward path (see layernorm_test.cc's BackwardPaths; rmsnorm shares the kernels without
// centering): one-warp rows, multi-warp teams, several combination windows, loop kernels, scalar
// widths; rows 1, 7, 33, then many blocks and slots, and the GPT-2 width in bf16.
TEST(CudaRmsNorm, BackwardPaths) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    for (int64_t rows : {1, 7, 33}) {
      for (int64_t c : {3, 512, 769, 768, 1024, 1032, 3072, 8192, 8200}) CompareRmsNorm(dt, Shape{rows, c}, true);
    }
    CompareRmsNorm(dt, Shape{1000, 768}, true);
    CompareRmsNorm(dt, Shape{2048, 3072}, true);
  }
  CompareRmsNorm(DType::kBF16, Shape{16384, 768}, true);
}

// The fused forward on every forward path: vector and scalar widths, one- and multi-warp teams,
// the loop kernel (20000), the GPT-2 and Llama-8B widths.
TEST(CudaRmsNorm, FusedForwardMatchesCpu) {
  ZT_SKIP_WITHOUT_CUDA();
  testing::CompareFusedForwardPathsWithCpu(kRmsNormFamily, {Shape{16384, 768}, Shape{2048, 4096}});
}

// The dresidual backward on every path of BackwardPaths, and the GPT-2 and Llama-8B shapes.
TEST(CudaRmsNorm, ResidualBackwardPaths) {
  ZT_SKIP_WITHOUT_CUDA();
  testing::CompareResidualBackwardPathsWithCpu(kRmsNormFamily, {3, 512, 769, 768, 1024, 1032, 3072, 8192, 8200},
                                               {Shape{16384, 768}, Shape{2048, 4096}, Shape{1, 2048, 4096}});
}

TEST(CudaRmsNorm, FusedMisalignedTensors) {
  ZT_SKIP_WITHOUT_CUDA();
  testing::CompareFusedMisalignedWithCpu(kRmsNormFamily);
}

// The fused kernels are the unfused ones plus `add`, to the bit, on every path.
TEST(CudaRmsNorm, FusedIsBitIdenticalToUnfused) {
  ZT_SKIP_WITHOUT_CUDA();
  testing::ExpectFusedBitwiseEqualUnfusedOnEveryPath(kRmsNormFamily);
}

// ---- Direct runs ----

Backend& Cuda() { return testing::CudaForNormTests(); }
DirectTensor In(DType dt, Shape s, uint64_t seed, size_t offset, float lo = -1.0f, float hi = 1.0f) {
  return testing::RandomIn(dt, std::move(s), seed, offset, lo, hi);
}
DirectTensor Out(DType dt, Shape s, size_t offset) { return testing::OutAt(dt, std::move(s), offset); }
std::vector<DirectTensor> BwdInputs(DType dt, int64_t rows, int64_t c, size_t offset) {
  return testing::NormBwdInputs(kRmsNormFamily, dt, rows, c, offset);
}
std::vector<DirectTensor> BwdOutputs(DType dt, int64_t rows, int64_t c, size_t offset) {
  return testing::NormBwdOutputs(kRmsNormFamily, dt, rows, c, offset);
}

TEST(CudaRmsNorm, MisalignedTensors) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    const size_t es = DTypeSize(dt);
    for (int64_t c : {int64_t{8}, int64_t{768}, int64_t{4096}}) {
      SCOPED_TRACE(std::string(DTypeName(dt)) + " C " + std::to_string(c));
      const int64_t rows = 5;
      std::vector<DirectTensor> in = {In(dt, {rows, c}, 1, es), In(dt, {c}, 2, es, 0.5f, 1.5f)};
      std::vector<DirectTensor> out = {Out(dt, {rows, c}, es), Out(DType::kF32, {rows}, 4)};
      CpuBackend cpu;
      auto ref = testing::RunKernelDirect(cpu, "rmsnorm", {}, in, out);
      auto got = testing::RunKernelDirect(Cuda(), "rmsnorm", {}, in, out);
      testing::ExpectNear("y", dt, ref[0], got[0], testing::DefaultTolerance(dt));
      testing::ExpectNear("rstd", DType::kF32, ref[1], got[1], testing::DefaultTolerance(DType::kF32));

      auto bin = BwdInputs(dt, rows, c, es);
      auto bout = BwdOutputs(dt, rows, c, es);
      auto bref = testing::RunKernelDirect(cpu, "rmsnorm_bwd", {}, bin, bout);
      auto bgot = testing::RunKernelDirect(Cuda(), "rmsnorm_bwd", {}, bin, bout);
      testing::ExpectNear("dx", dt, bref[0], bgot[0], testing::DefaultTolerance(dt));
      testing::ExpectNear("dw", dt, bref[1], bgot[1], testing::DefaultTolerance(dt));
    }
  }
}

// The scalar path with many rows (several blocks, every slot written: the workspace is poisoned).
TEST(CudaRmsNorm, MisalignedManyRows) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    const size_t es = DTypeSize(dt);
    for (auto [rows, c] : {std::pair<int64_t, int64_t>{1000, 768}, {333, 3072}}) {
      SCOPED_TRACE(std::string(DTypeName(dt)) + " " + std::to_string(rows) + " x " + std::to_string(c));
      CpuBackend cpu;
      auto bin = BwdInputs(dt, rows, c, es);
      auto bout = BwdOutputs(dt, rows, c, es);
      auto bref = testing::RunKernelDirect(cpu, "rmsnorm_bwd", {}, bin, bout);
      auto bgot = testing::RunKernelDirect(Cuda(), "rmsnorm_bwd", {}, bin, bout);
      testing::ExpectNear("dx", dt, bref[0], bgot[0], testing::DefaultTolerance(dt));
      testing::ExpectNear("dw", dt, bref[1], bgot[1], testing::DefaultTolerance(dt));
    }
  }
}

TEST(CudaRmsNorm, BackwardIsBitIdenticalRunToRun) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::kF32, DType::kBF16}) {
    for (auto [rows, c] : {std::pair<int64_t, int64_t>{2048, 4096}, {1000, 33}, {64, 20000}, {16384, 768}}) {
      SCOPED_TRACE(std::string(DTypeName(dt)) + " " + std::to_string(rows) + " x " + std::to_string(c));
      auto in = BwdInputs(dt, rows, c, 0);
      auto out = BwdOutputs(dt, rows, c, 0);
      auto a = testing::RunKernelDirect(Cuda(), "rmsnorm_bwd", {}, in, out);
      auto b = testing::RunKernelDirect(Cuda(), "rmsnorm_bwd", {}, in, out);
      testing::ExpectBitwiseEqual("dx", dt, a[0], b[0]);
      testing::ExpectBitwiseEqual("dw", dt, a[1], b[1]);
    }
  }
}

TEST(CudaRmsNorm, BackwardOfNoRowsIsZero) {
  ZT_SKIP_WITHOUT_CUDA();
  const int64_t c = 33;
  std::vector<DirectTensor> in = {In(DType::kF32, {0, c}, 1, 0), In(DType::kF32, {0, c}, 2, 0),
                                  In(DType::kF32, {c}, 3, 0), In(DType::kF32, {0}, 4, 0)};
  auto got = testing::RunKernelDirect(Cuda(), "rmsnorm_bwd", {}, in, BwdOutputs(DType::kF32, 0, c, 0));
  auto zeros = testing::ToBytes(DType::kF32, std::vector<float>(c, 0.0f));
  testing::ExpectBitwiseEqual("dw", DType::kF32, zeros, got[1]);
  // With a dresidual, and the fused forward of no rows (nothing to write, no launch).
  in.push_back(In(DType::kF32, {0, c}, 6, 0));
  got = testing::RunKernelDirect(Cuda(), "rmsnorm_bwd", {}, in, BwdOutputs(DType::kF32, 0, c, 0));
  testing::ExpectBitwiseEqual("dw", DType::kF32, zeros, got[1]);
  got = testing::RunKernelDirect(Cuda(), "add_rmsnorm", {},
                                 {In(DType::kF32, {0, c}, 1, 0), In(DType::kF32, {0, c}, 2, 0),
                                  In(DType::kF32, {c}, 3, 0)},
                                 {Out(DType::kF32, {0, c}, 0), Out(DType::kF32, {0, c}, 0), Out(DType::kF32, {0}, 0)});
  EXPECT_EQ(got.size(), 3u);
}

}  // namespace
}  // namespace zt
