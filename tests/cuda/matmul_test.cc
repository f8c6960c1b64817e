// CUDA matmul (cuBLASLt) against the CPU reference (OpenBLAS sgemm in f32): every transpose,
// batch and bias combination of tests/ops/matmul_test.cc in f32, bf16 and f16, with gradients;
// odd sizes (1, 7, 33, 1000); GPT-2 124M shapes (16384 x 768 @ 768 x 2304 with bias, the logits
// 16384 x 768 @ (50257 x 768)^T, their weight gradients with K = 16384, batched attention
// products) and Llama-8B shapes (4096 x 4096 @ (4096 x 4096)^T, @ (14336 x 4096)^T, K = 14336).
// Tolerances: f32 1e-4 relative to the output's typical size sqrt(K/9) (the summation order
// differs; TF32 would be ~100x off and fail), bf16/f16 DefaultTolerance (one rounding of the
// output). Every cuBLASLt test also checks that no call took the fallback kernel; the fallback
// itself is tested by forcing it. Misaligned operands (views into flat buffers) run directly, and
// large problems with misaligned rows (vocab 50257) through padded copies.
#include <gtest/gtest.h>

#include <cmath>

#include "direct_kernel.h"
#include "ir/ops/matmul.h"
#include "kernels/cuda/matmul.cuh"
#include "support/device_compare.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::CompareOptions;
using testing::CompareWithCpu;
using testing::Tolerance;

struct Case {
  std::vector<int64_t> a, b;
  bool ta, tb, bias;
};

// The CPU test's cases (tests/ops/matmul_test.cc).
const std::vector<Case> kCases = {
    {{3, 4}, {4, 5}, false, false, false},       {{3, 4}, {5, 4}, false, true, true},
    {{4, 3}, {4, 5}, true, false, false},        {{4, 3}, {5, 4}, true, true, true},
    {{2, 3, 4}, {4, 5}, false, false, true},     {{2, 3, 4}, {5, 4}, false, true, false},
    {{2, 3, 4}, {2, 4, 5}, false, false, false}, {{2, 4, 3}, {2, 5, 4}, true, true, false},
    {{3, 4}, {2, 4, 5}, false, false, false},    {{2, 4, 3}, {4, 5}, true, false, false},
    {{1, 1, 1}, {1, 1}, false, false, true},     {{2, 2, 7, 13}, {2, 2, 13, 1}, false, false, false},
};

int64_t InnerDim(const Case& c) { return c.ta ? Shape(c.a)[-2] : Shape(c.a)[-1]; }
int64_t OutCols(const Case& c) { return c.tb ? Shape(c.b)[-2] : Shape(c.b)[-1]; }

Tolerance TolFor(DType dt, int64_t k) {
  if (dt != DType::kF32) return testing::DefaultTolerance(dt);
  double typical = std::sqrt(static_cast<double>(k) / 9.0) + 1.0;  // |out| of uniform(-1,1) inputs
  return {1e-4 * typical, 1e-4};
}

std::string Name(const Case& c, DType dt) {
  return std::string(DTypeName(dt)) + " a" + Shape(c.a).ToString() + (c.ta ? "^T" : "") + " b" + Shape(c.b).ToString() +
         (c.tb ? "^T" : "") + (c.bias ? " +bias" : "");
}

void Compare(const Case& c, DType dt, bool gradients, std::optional<Tolerance> tol = std::nullopt) {
  SCOPED_TRACE(Name(c, dt));
  std::vector<testing::DeviceInput> in = {{"a", Shape(c.a), dt}, {"b", Shape(c.b), dt}};
  if (c.bias) in.push_back({"bias", Shape{OutCols(c)}, dt});
  CompareOptions o;
  o.gradients = gradients;
  o.tolerance = tol.value_or(TolFor(dt, InnerDim(c)));
  CompareWithCpu(in,
                 [c](ir::Builder& b, const std::vector<ir::Value*>& v) {
                   return std::vector<ir::Value*>{
                       ir::ops::Matmul(b, v[0], v[1], c.ta, c.tb, c.bias ? v[2] : nullptr, "out")};
                 },
                 o);
}

class CudaMatmulCase : public ::testing::TestWithParam<Case> {};

TEST_P(CudaMatmulCase, ForwardAndGradients) {
  ZT_SKIP_WITHOUT_CUDA();
  int64_t fallbacks = MatmulCudaFallbackCount();
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) Compare(GetParam(), dt, /*gradients=*/true);
  EXPECT_EQ(MatmulCudaFallbackCount(), fallbacks) << "cuBLASLt refused a problem (see the warnings)";
}

TEST_P(CudaMatmulCase, FallbackKernel) {
  ZT_SKIP_WITHOUT_CUDA();
  int64_t fallbacks = MatmulCudaFallbackCount();
  SetMatmulCudaForceFallback(true);
  for (DType dt : {DType::kF32, DType::kBF16}) Compare(GetParam(), dt, /*gradients=*/false);
  SetMatmulCudaForceFallback(false);
  EXPECT_GE(MatmulCudaFallbackCount(), fallbacks + 2) << "the forced fallback did not run";
}

INSTANTIATE_TEST_SUITE_P(All, CudaMatmulCase, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) { return "case" + std::to_string(i.index); });

TEST(CudaMatmul, OddSizes) {
  ZT_SKIP_WITHOUT_CUDA();
  int64_t fallbacks = MatmulCudaFallbackCount();
  const int64_t sizes[] = {1, 7, 33, 1000};
  for (int64_t m : sizes)
    for (int64_t n : sizes)
      for (int64_t k : sizes) {
        bool ta = (m + n + k) % 2 == 1, tb = (m * 3 + k) % 4 < 2, bias = n % 2 == 1;
        Case c{ta ? std::vector<int64_t>{k, m} : std::vector<int64_t>{m, k},
               tb ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n}, ta, tb, bias};
        Compare(c, DType::kF32, false);
        if (m * n * k <= 33 * 33 * 1000) Compare(c, DType::kBF16, false);
      }
  // Batched with odd sizes and a shared operand on either side.
  Compare({{3, 33, 7}, {7, 1000}, false, false, true}, DType::kBF16, true);
  Compare({{3, 7, 33}, {7, 1000}, true, false, false}, DType::kF16, true);
  Compare({{33, 7}, {5, 1000, 7}, false, true, false}, DType::kF32, true);
  Compare({{2, 3, 1, 7}, {2, 3, 7, 1}, false, false, true}, DType::kF32, true);
  EXPECT_EQ(MatmulCudaFallbackCount(), fallbacks);
}

TEST(CudaMatmul, AlgorithmChosenOncePerProblem) {
  ZT_SKIP_WITHOUT_CUDA();
  Case c{{4, 96, 200}, {200, 136}, false, false, true};
  Compare(c, DType::kBF16, false);
  int64_t cached = MatmulCudaCachedAlgos();
  EXPECT_GE(cached, 1);
  Compare(c, DType::kBF16, false);  // same problem, same alignments: no new heuristic query
  EXPECT_EQ(MatmulCudaCachedAlgos(), cached);
}

// ---- Model-sized problems ----

TEST(CudaMatmul, Gpt2QkvProjectionBf16) {
  ZT_SKIP_WITHOUT_CUDA();
  int64_t fallbacks = MatmulCudaFallbackCount();
  Compare({{16, 1024, 768}, {768, 2304}, false, false, true}, DType::kBF16, false);  // x @ W + b (Conv1D layout)
  Compare({{16384, 768}, {2304, 768}, false, true, true}, DType::kBF16, false);      // nn.Linear layout
  Compare({{16384, 2304}, {16384, 768}, true, false, false}, DType::kBF16, false);   // dW = dY^T X, K = 16384
  Compare({{16384, 2304}, {2304, 768}, false, false, false}, DType::kBF16, false);   // dX = dY W
  EXPECT_EQ(MatmulCudaFallbackCount(), fallbacks);
}

TEST(CudaMatmul, Gpt2LogitsBf16) {
  ZT_SKIP_WITHOUT_CUDA();
  int64_t fallbacks = MatmulCudaFallbackCount();
  int64_t padded = MatmulCudaPaddedCount();
  Compare({{16384, 768}, {50257, 768}, false, true, false}, DType::kBF16, false);   // logits = x wte^T
  Compare({{16384, 50257}, {16384, 768}, true, false, false}, DType::kBF16, false);  // d wte = dlogits^T x
  Compare({{16384, 50257}, {50257, 768}, false, false, false}, DType::kBF16, false); // dx = dlogits wte
  EXPECT_EQ(MatmulCudaPaddedCount(), padded + 3) << "vocab 50257 rows are misaligned: padded copies expected";
  EXPECT_EQ(MatmulCudaFallbackCount(), fallbacks);
}

TEST(CudaMatmul, Gpt2AttentionProductsBf16) {
  ZT_SKIP_WITHOUT_CUDA();
  int64_t fallbacks = MatmulCudaFallbackCount();
  Compare({{192, 1024, 64}, {192, 1024, 64}, false, true, false}, DType::kBF16, false);    // Q K^T, B*H = 16*12
  Compare({{192, 1024, 1024}, {192, 1024, 64}, false, false, false}, DType::kBF16, false);  // P V
  EXPECT_EQ(MatmulCudaFallbackCount(), fallbacks);
}

TEST(CudaMatmul, Llama8bProjections) {
  ZT_SKIP_WITHOUT_CUDA();
  int64_t fallbacks = MatmulCudaFallbackCount();
  Compare({{4096, 4096}, {4096, 4096}, false, true, false}, DType::kBF16, false);    // q/o projection
  Compare({{4096, 4096}, {14336, 4096}, false, true, false}, DType::kBF16, false);   // gate/up
  Compare({{4096, 14336}, {4096, 14336}, false, true, false}, DType::kBF16, false);  // down, K = 14336
  Compare({{4096, 4096}, {4096, 4096}, false, true, false}, DType::kF32, false);     // f32, K = 4096
  Compare({{4096, 4096}, {4096, 14336}, false, false, true}, DType::kF32, false);
  Compare({{2048, 4096}, {2048, 1024}, true, false, false}, DType::kF16, false);     // k/v weight gradient
  EXPECT_EQ(MatmulCudaFallbackCount(), fallbacks);
}

// Problems >= 1 GFLOP with rows that are not 16-byte aligned run on padded copies (workspace).
TEST(CudaMatmul, PaddedCopiesOfMisalignedRows) {
  ZT_SKIP_WITHOUT_CUDA();
  int64_t fallbacks = MatmulCudaFallbackCount(), padded = MatmulCudaPaddedCount();
  Compare({{1000, 1031}, {1031, 1025}, false, false, true}, DType::kBF16, false);        // a, b, out padded
  Compare({{1000, 1031}, {1031, 1025}, false, false, true}, DType::kF16, false);
  Compare({{3, 517, 1031}, {1031, 1001}, false, false, false}, DType::kBF16, false);     // shared b, merged
  Compare({{2, 1031, 517}, {2, 1001, 1031}, true, true, true}, DType::kBF16, false);     // batched, transposed
  Compare({{1024, 1031}, {1031, 1032}, false, false, false}, DType::kBF16, false);       // only a padded
  EXPECT_EQ(MatmulCudaPaddedCount(), padded + 5) << "every problem above should have been padded";
  Compare({{1024, 1024}, {1024, 1024}, false, false, true}, DType::kBF16, false);       // aligned: no copies
  Compare({{7, 1031}, {1031, 1025}, false, false, true}, DType::kBF16, false);          // small: no copies
  EXPECT_EQ(MatmulCudaPaddedCount(), padded + 5) << "aligned or small problems must not be padded";
  EXPECT_EQ(MatmulCudaFallbackCount(), fallbacks);
}

// ---- Misaligned operands (views at any element offset), run directly ----

TEST(CudaMatmul, MisalignedOperands) {
  ZT_SKIP_WITHOUT_CUDA();
  std::unique_ptr<Backend> cuda = testing::MakeCudaBackend();
  CpuBackend cpu;
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
    size_t es = DTypeSize(dt);
    for (size_t off : {es, 3 * es, size_t{8}}) {
      for (const Case& c : {Case{{2, 33, 64}, {64, 40}, false, false, true}, Case{{64, 48}, {40, 64}, true, true, true},
                            Case{{3, 16, 8}, {3, 24, 8}, false, true, false},
                            Case{{2048, 1024}, {1024, 1024}, false, false, true}}) {  // >= 1 GFLOP: padded
        SCOPED_TRACE(Name(c, dt) + " offset " + std::to_string(off));
        Shape as(c.a), bs(c.b);
        Shape os = as.Slice(0, -2).rank() ? as.Slice(0, -2) : bs.Slice(0, -2);
        std::vector<int64_t> od = os.dims();
        od.push_back(c.ta ? as[-1] : as[-2]);
        od.push_back(OutCols(c));
        auto mk = [&](Shape s, uint64_t seed, size_t o) {
          testing::DirectTensor t;
          t.dtype = dt;
          t.shape = s;
          t.bytes = testing::ToBytes(dt, testing::RandomUniform(s.numel(), seed));
          t.offset = o;
          return t;
        };
        std::vector<testing::DirectTensor> in = {mk(as, 1, off), mk(bs, 2, 0)};
        if (c.bias) in.push_back(mk(Shape{OutCols(c)}, 3, off));
        testing::DirectTensor out;
        out.dtype = dt;
        out.shape = Shape(od);
        out.offset = off;
        ir::AttrMap attrs{{"trans_a", c.ta}, {"trans_b", c.tb}};
        auto ref = testing::RunKernelDirect(cpu, "matmul", attrs, in, {out});
        auto got = testing::RunKernelDirect(*cuda, "matmul", attrs, in, {out});
        testing::ExpectNear("matmul", dt, ref[0], got[0], TolFor(dt, InnerDim(c)));
      }
    }
  }
}

}  // namespace
}  // namespace zt
