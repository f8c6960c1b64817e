// CUDA layernorm / layernorm_bwd against the CPU reference: y, mean, rstd (f32 statistics) and the
// gradients of x, w, b through autodiff, for f32/bf16/f16, odd widths (C = 1, 7, 33, 4097: the
// scalar path), vector widths (768, 1000, 4096), wide rows that take the loop kernels (12000 in the
// backward, 20000 in both), 1 and 3 rows, rank-3 inputs, and the GPT-2 124M shape (16384 x 768);
// BackwardPaths reaches every backward kernel instance class (one-warp rows at each vector count,
// multi-warp teams, several combination windows, loop kernels) with 1, 7, 33 and many rows.
// Direct runs reach the misaligned (scalar) path, zero rows (dw = db = 0), and check that the
// backward is bit-identical from run to run (its dw/db reduction order is fixed).
// The fused residual forms (add_layernorm; layernorm_bwd with dresidual) against the CPU on every
// path above (vector and scalar register kernels, one-warp and multi-warp teams, combination
// windows, the loop kernels, the GPT-2 shape), misaligned a, b, sum or dresidual alone (each
// forces the scalar path), and bit for bit against layernorm / layernorm_bwd followed by `add`
// on CUDA (norm_test_util.h).
#include <gtest/gtest.h>

#include "direct_kernel.h"
#include "ir/ops/layernorm.h"
#include "norm_test_util.h"
#include "support/device_compare.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::CompareOptions;
using testing::CompareWithCpu;
using testing::DirectTensor;
using testing::kLayerNormFamily;

const auto& kFloatTypes = testing::kNormFloatTypes;

std::vector<ir::Value*> BuildLayerNorm(ir::Builder& b, const std::vector<ir::Value*>& v) {
  auto r = ir::ops::LayerNorm(b, v[0], v[1], v[2], 1e-5, "ln");
  return {r.y, r.mean, r.rstd};
}

void CompareLayerNorm(DType dt, const Shape& x, bool gradients, float lo = -1.0f, float hi = 1.0f) {
  SCOPED_TRACE(std::string(DTypeName(dt)) + " x " + x.ToString() + (gradients ? " with gradients" : ""));
  int64_t c = x[-1];
  CompareOptions o;
  o.gradients = gradients;
  CompareWithCpu({{"x", x, dt, lo, hi}, {"w", Shape{c}, dt, 0.5f, 1.5f}, {"b", Shape{c}, dt, -0.5f, 0.5f}},
                 BuildLayerNorm, o);
}

TEST(CudaLayerNorm, ForwardMatchesCpu) {
  ZT_SKIP_WITHOUT_CUDA();
  const Shape shapes[] = {{1, 1},    {3, 7},    {1, 33},    {3, 768},  {7, 1000},
                          {5, 4097}, {2, 4096}, {3, 12000}, {2, 20000}, {2, 3, 33}};
  for (DType dt : kFloatTypes) {
    for (const Shape& s : shapes) CompareLayerNorm(dt, s, false);
  }
  // A large mean against a small spread: the two-pass variance keeps rstd accurate.
  CompareLayerNorm(DType::kF32, Shape{4, 768}, false, 100.0f, 101.0f);
}

TEST(CudaLayerNorm, GradientsMatchCpu) {
  ZT_SKIP_WITHOUT_CUDA();
  const Shape shapes[] = {{1, 1}, {3, 7}, {1, 33}, {3, 768}, {64, 1000}, {5, 4097}, {9, 4096}, {3, 12000}, {2, 20000}};
  for (DType dt : kFloatTypes) {
    for (const Shape& s : shapes) CompareLayerNorm(dt, s, true);
  }
}

TEST(CudaLayerNorm, Gpt2Shape) {
  ZT_SKIP_WITHOUT_CUDA();
  CompareLayerNorm(DType::kBF16, Shape{16, 1024, 768}, true);
  CompareLayerNorm(DType::kF32, Shape{16384, 768}, true);
}

// Every backward path: one warp per row at 1..4 vectors a lane (bf16/f16 C 256, 512, 768, 1024),
// 3..8 for f32 (768, 1024), multi-warp teams (1032: a second, mostly idle warp; 3072: two teams a
// block, the in-block combination in two column windows; 8192: one 256-thread team, four windows),
// the wide-row loop kernels (8200), scalar widths (3, 769); rows 1, 7, 33 (fewer rows than teams),
// then enough rows for many blocks and slots (1000 x 768, 2048 x 3072).
TEST(CudaLayerNorm, BackwardPaths) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    for (int64_t rows : {1, 7, 33}) {
      for (int64_t c : {3, 256, 512, 769, 768, 1024, 1032, 3072, 8192, 8200}) CompareLayerNorm(dt, Shape{rows, c}, true);
    }
    CompareLayerNorm(dt, Shape{1000, 768}, true);
    CompareLayerNorm(dt, Shape{2048, 3072}, true);
  }
}

// The fused forward on every forward path: vector and scalar widths, one- and multi-warp teams,
// the loop kernel (20000), the GPT-2 shape.
TEST(CudaLayerNorm, FusedForwardMatchesCpu) {
  ZT_SKIP_WITHOUT_CUDA();
  testing::CompareFusedForwardPathsWithCpu(kLayerNormFamily, {Shape{16384, 768}, Shape{16, 1024, 768}});
}

// The dresidual backward on every path of BackwardPaths, and the GPT-2 shape.
TEST(CudaLayerNorm, ResidualBackwardPaths) {
  ZT_SKIP_WITHOUT_CUDA();
  testing::CompareResidualBackwardPathsWithCpu(kLayerNormFamily, {3, 256, 512, 769, 768, 1024, 1032, 3072, 8192, 8200},
                                               {Shape{16384, 768}, Shape{16, 1024, 768}});
}

TEST(CudaLayerNorm, FusedMisalignedTensors) {
  ZT_SKIP_WITHOUT_CUDA();
  testing::CompareFusedMisalignedWithCpu(kLayerNormFamily);
}

// The fused kernels are the unfused ones plus `add`, to the bit, on every path.
TEST(CudaLayerNorm, FusedIsBitIdenticalToUnfused) {
  ZT_SKIP_WITHOUT_CUDA();
  testing::ExpectFusedBitwiseEqualUnfusedOnEveryPath(kLayerNormFamily);
}

// ---- Direct runs ----

Backend& Cuda() { return testing::CudaForNormTests(); }
DirectTensor In(DType dt, Shape s, uint64_t seed, size_t offset, float lo = -1.0f, float hi = 1.0f) {
  return testing::RandomIn(dt, std::move(s), seed, offset, lo, hi);
}
DirectTensor Out(DType dt, Shape s, size_t offset) { return testing::OutAt(dt, std::move(s), offset); }
std::vector<DirectTensor> BwdInputs(DType dt, int64_t rows, int64_t c, size_t offset) {
  return testing::NormBwdInputs(kLayerNormFamily, dt, rows, c, offset);
}
std::vector<DirectTensor> BwdOutputs(DType dt, int64_t rows, int64_t c, size_t offset) {
  return testing::NormBwdOutputs(kLayerNormFamily, dt, rows, c, offset);
}

TEST(CudaLayerNorm, MisalignedTensors) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    const size_t es = DTypeSize(dt);
    for (int64_t c : {int64_t{8}, int64_t{768}, int64_t{4096}}) {
      SCOPED_TRACE(std::string(DTypeName(dt)) + " C " + std::to_string(c));
      const int64_t rows = 5;
      std::vector<DirectTensor> in = {In(dt, {rows, c}, 1, es), In(dt, {c}, 2, es, 0.5f, 1.5f), In(dt, {c}, 3, es)};
      std::vector<DirectTensor> out = {Out(dt, {rows, c}, es), Out(DType::kF32, {rows}, 4),
                                       Out(DType::kF32, {rows}, 4)};
      CpuBackend cpu;
      auto ref = testing::RunKernelDirect(cpu, "layernorm", {}, in, out);
      auto got = testing::RunKernelDirect(Cuda(), "layernorm", {}, in, out);
      testing::ExpectNear("y", dt, ref[0], got[0], testing::DefaultTolerance(dt));
      testing::ExpectNear("mean", DType::kF32, ref[1], got[1], testing::DefaultTolerance(DType::kF32));
      testing::ExpectNear("rstd", DType::kF32, ref[2], got[2], testing::DefaultTolerance(DType::kF32));

      auto bin = BwdInputs(dt, rows, c, es);
      auto bout = BwdOutputs(dt, rows, c, es);
      auto bref = testing::RunKernelDirect(cpu, "layernorm_bwd", {}, bin, bout);
      auto bgot = testing::RunKernelDirect(Cuda(), "layernorm_bwd", {}, bin, bout);
      const char* names[] = {"dx", "dw", "db"};
      for (int k = 0; k < 3; ++k) testing::ExpectNear(names[k], dt, bref[k], bgot[k], testing::DefaultTolerance(dt));
    }
  }
}

// The scalar path with many rows (several blocks, every slot written: the workspace is poisoned).
TEST(CudaLayerNorm, MisalignedManyRows) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    const size_t es = DTypeSize(dt);
    for (auto [rows, c] : {std::pair<int64_t, int64_t>{1000, 768}, {333, 3072}}) {
      SCOPED_TRACE(std::string(DTypeName(dt)) + " " + std::to_string(rows) + " x " + std::to_string(c));
      CpuBackend cpu;
      auto bin = BwdInputs(dt, rows, c, es);
      auto bout = BwdOutputs(dt, rows, c, es);
      auto bref = testing::RunKernelDirect(cpu, "layernorm_bwd", {}, bin, bout);
      auto bgot = testing::RunKernelDirect(Cuda(), "layernorm_bwd", {}, bin, bout);
      const char* names[] = {"dx", "dw", "db"};
      for (int k = 0; k < 3; ++k) testing::ExpectNear(names[k], dt, bref[k], bgot[k], testing::DefaultTolerance(dt));
    }
  }
}

TEST(CudaLayerNorm, BackwardIsBitIdenticalRunToRun) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::kF32, DType::kBF16}) {
    for (auto [rows, c] : {std::pair<int64_t, int64_t>{16384, 768}, {1000, 33}, {64, 20000}, {2048, 3072}}) {
      SCOPED_TRACE(std::string(DTypeName(dt)) + " " + std::to_string(rows) + " x " + std::to_string(c));
      auto in = BwdInputs(dt, rows, c, 0);
      auto out = BwdOutputs(dt, rows, c, 0);
      auto a = testing::RunKernelDirect(Cuda(), "layernorm_bwd", {}, in, out);
      auto b = testing::RunKernelDirect(Cuda(), "layernorm_bwd", {}, in, out);
      const char* names[] = {"dx", "dw", "db"};
      for (int k = 0; k < 3; ++k) testing::ExpectBitwiseEqual(names[k], dt, a[k], b[k]);
    }
  }
}

TEST(CudaLayerNorm, BackwardOfNoRowsIsZero) {
  ZT_SKIP_WITHOUT_CUDA();
  const int64_t c = 33;
  std::vector<DirectTensor> in = {In(DType::kF32, {0, c}, 1, 0), In(DType::kF32, {0, c}, 2, 0),
                                  In(DType::kF32, {c}, 3, 0), In(DType::kF32, {0}, 4, 0), In(DType::kF32, {0}, 5, 0)};
  auto got = testing::RunKernelDirect(Cuda(), "layernorm_bwd", {}, in, BwdOutputs(DType::kF32, 0, c, 0));
  auto zeros = testing::ToBytes(DType::kF32, std::vector<float>(c, 0.0f));
  testing::ExpectBitwiseEqual("dw", DType::kF32, zeros, got[1]);
  testing::ExpectBitwiseEqual("db", DType::kF32, zeros, got[2]);
  // With a dresidual, and the fused forward of no rows (nothing to write, no launch).
  in.push_back(In(DType::kF32, {0, c}, 6, 0));
  got = testing::RunKernelDirect(Cuda(), "layernorm_bwd", {}, in, BwdOutputs(DType::kF32, 0, c, 0));
  testing::ExpectBitwiseEqual("dw", DType::kF32, zeros, got[1]);
  testing::ExpectBitwiseEqual("db", DType::kF32, zeros, got[2]);
  got = testing::RunKernelDirect(Cuda(), "add_layernorm", {},
                                 {In(DType::kF32, {0, c}, 1, 0), In(DType::kF32, {0, c}, 2, 0),
                                  In(DType::kF32, {c}, 3, 0), In(DType::kF32, {c}, 4, 0)},
                                 {Out(DType::kF32, {0, c}, 0), Out(DType::kF32, {0, c}, 0), Out(DType::kF32, {0}, 0),
                                  Out(DType::kF32, {0}, 0)});
  EXPECT_EQ(got.size(), 4u);
}

}  // namespace
}  // namespace zt
