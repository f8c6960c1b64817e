// CUDA matmul epilogues (matmul_gelu: GELU_AUX(_BIAS); matmul_dgelu: DGELU; matmul_bgrad:
// BGRADA/BGRADB) against the CPU reference (matmul then gelu / gelu_bwd / reduce_sum_to), every
// output element compared, device outputs poisoned first:
//   - GPT-2 124M's shapes in bf16 (c_fc forward 16384 x 768 @ 768 x 3072 + bias, the dh GEMM
//     16384 x 768 @ (3072 x 768)^T with DGELU, the four weight gradients with their bias gradients,
//     K = 16384, in the Conv1D and the nn.Linear layouts), which must take the fused path (no
//     unfused run, no tiled-kernel run), and smaller GPT-2-like shapes in f16 and f32;
//   - small and odd shapes (1, 7, 13, 33, ...; transposes; batched and shared operands; with and
//     without bias) in f32, bf16 and f16, fused or not as RunMatmulLt decides;
//   - the unfused path forced (SetMatmulEpilogueCudaForceFallback: cuBLASLt matmul then our
//     kernels) and the tiled kernel forced (SetMatmulCudaForceFallback) — both counted;
//   - misaligned operands and outputs (direct runs at odd byte offsets), which must stay correct;
//   - run-to-run bit-identical results and one cached algorithm per problem and epilogue.
// Tolerances: cuBLASLt applies gelu / gelu' (tanh form, its own tanh) to the f32 product where the
// CPU rounds the product to the dtype first, and sums the bias gradient in f32 where the CPU sums
// in double: bf16 DefaultTolerance; f16 5e-3 (2.5x the default: the extra rounding of the product
// seen through gelu', cuBLASLt's tanh); f32 2e-3 relative to the product's typical size for gelu outputs (an
// approximate tanh) and 1e-4 for plain products and sums. Inputs are scaled so that the product is
// O(1) (sd 2), where gelu is far from linear.
#include <gtest/gtest.h>

#include <cmath>

#include "direct_kernel.h"
#include "kernels/cuda/matmul.cuh"
#include "kernels/cuda/matmul_epilogue.cuh"
#include "support/device_compare.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::CompareOptions;
using testing::CompareWithCpu;
using testing::DeviceInput;
using testing::Tolerance;

enum class Op { kGelu, kDGelu, kBGrad };

struct Case {
  Op op;
  std::vector<int64_t> a, b;
  bool ta = false, tb = false;
  bool bias = false;          // matmul_gelu only
  bool bias_of_a = false;     // matmul_bgrad only
};

const char* OpName(Op op) {
  return op == Op::kGelu ? "matmul_gelu" : op == Op::kDGelu ? "matmul_dgelu" : "matmul_bgrad";
}

int64_t InnerDim(const Case& c) { return c.ta ? Shape(c.a)[-2] : Shape(c.a)[-1]; }
int64_t OutCols(const Case& c) { return c.tb ? Shape(c.b)[-2] : Shape(c.b)[-1]; }

// The product's shape (matmul's rule: batch dims of the batched operand).
Shape ProductShape(const Case& c) {
  Shape as(c.a), bs(c.b);
  std::vector<int64_t> d = as.rank() > 2 ? as.Slice(0, -2).dims() : bs.Slice(0, -2).dims();
  d.push_back(c.ta ? as[-1] : as[-2]);
  d.push_back(OutCols(c));
  return Shape(d);
}

std::string Name(const Case& c, DType dt) {
  return std::string(OpName(c.op)) + " " + DTypeName(dt) + " a" + Shape(c.a).ToString() + (c.ta ? "^T" : "") +
         " b" + Shape(c.b).ToString() + (c.tb ? "^T" : "") + (c.bias ? " +bias" : "") +
         (c.op == Op::kBGrad ? (c.bias_of_a ? " bias_of=a" : " bias_of=b") : "");
}

// Operand range giving the product a standard deviation of about 2: uniform(-s, s) has variance
// s^2 / 3, so a K-term product has variance K s^4 / 9.
float OperandRange(int64_t k) { return static_cast<float>(std::sqrt(2.0 / std::sqrt(std::max<int64_t>(k, 1) / 9.0))); }

Tolerance TolFor(const Case& c, DType dt) {
  if (dt == DType::kBF16) return testing::DefaultTolerance(dt);
  if (dt == DType::kF16) return {5e-3, 5e-3};
  if (c.op == Op::kBGrad) {  // a K-term product and a K-term sum of uniform(-1, 1)
    double typical = std::sqrt(static_cast<double>(InnerDim(c)) / 3.0) + 1.0;
    return {1e-4 * typical, 1e-4};
  }
  return {2e-3 * 3.0, 2e-3};  // products of sd 2 (plus a bias), through gelu or gelu'
}

std::vector<DeviceInput> Inputs(const Case& c, DType dt) {
  float s = c.op == Op::kBGrad ? 1.0f : OperandRange(InnerDim(c));
  std::vector<DeviceInput> in = {{"a", Shape(c.a), dt, -s, s}, {"b", Shape(c.b), dt, -s, s}};
  if (c.op == Op::kGelu && c.bias) in.push_back({"bias", Shape{OutCols(c)}, dt});
  if (c.op == Op::kDGelu) in.push_back({"pre", ProductShape(c), dt, -4.0f, 4.0f});
  return in;
}

ir::AttrMap Attrs(const Case& c) {
  ir::AttrMap a{{"trans_a", c.ta}, {"trans_b", c.tb}};
  if (c.op == Op::kBGrad) a.Set("bias_of", std::string(c.bias_of_a ? "a" : "b"));
  return a;
}

void Compare(const Case& c, DType dt) {
  SCOPED_TRACE(Name(c, dt));
  CompareOptions o;
  o.tolerance = TolFor(c, dt);
  CompareWithCpu(Inputs(c, dt),
                 [c](ir::Builder& b, const std::vector<ir::Value*>& v) {
                   return b.Emit(OpName(c.op), v, Attrs(c), "out");
                 },
                 o);
}

// Counters around a block: how many epilogue calls ran unfused and how many matmuls took the
// tiled kernel.
struct Counts {
  int64_t unfused = MatmulEpilogueCudaFallbackCount();
  int64_t tiled = MatmulCudaFallbackCount();
  int64_t Unfused() const { return MatmulEpilogueCudaFallbackCount() - unfused; }
  int64_t Tiled() const { return MatmulCudaFallbackCount() - tiled; }
};

// ---- GPT-2 124M (B*T = 16384, C = 768, 4C = 3072, 3C = 2304): the fused path ----

TEST(CudaMatmulEpilogue, Gpt2MlpForwardAndBackwardBf16) {
  ZT_SKIP_WITHOUT_CUDA();
  Counts n;
  Compare({Op::kGelu, {16384, 768}, {768, 3072}, false, false, true}, DType::kBF16);   // h, u = gelu(x W_fc + b)
  Compare({Op::kGelu, {16, 1024, 768}, {768, 3072}, false, false, true}, DType::kBF16);  // batched x, shared W
  Compare({Op::kGelu, {16384, 768}, {3072, 768}, false, true, false}, DType::kBF16);   // nn.Linear layout, no bias
  Compare({Op::kDGelu, {16384, 768}, {3072, 768}, false, true}, DType::kBF16);         // du = (dy W_proj^T) gelu'(u)
  Compare({Op::kDGelu, {16, 1024, 768}, {768, 3072}, false, false}, DType::kBF16);
  EXPECT_EQ(n.Unfused(), 0) << "cuBLASLt refused a GELU epilogue (see the warnings)";
  EXPECT_EQ(n.Tiled(), 0);
}

TEST(CudaMatmulEpilogue, Gpt2WeightAndBiasGradientsBf16) {
  ZT_SKIP_WITHOUT_CUDA();
  Counts n;
  // Conv1D layout (GPT-2): dW = x^T dC [in, out], db = column sums of dC (our b: BGRADA).
  Compare({Op::kBGrad, {16384, 768}, {16384, 3072}, true, false}, DType::kBF16);   // c_fc
  Compare({Op::kBGrad, {16384, 3072}, {16384, 768}, true, false}, DType::kBF16);   // mlp c_proj
  Compare({Op::kBGrad, {16384, 768}, {16384, 2304}, true, false}, DType::kBF16);   // c_attn
  // nn.Linear layout: dW = dC^T x [out, in], db = column sums of dC (our a: BGRADB).
  Compare({Op::kBGrad, {16384, 2304}, {16384, 768}, true, false, false, true}, DType::kBF16);
  EXPECT_EQ(n.Unfused(), 0) << "cuBLASLt refused a bias-gradient epilogue (see the warnings)";
  EXPECT_EQ(n.Tiled(), 0);
}

TEST(CudaMatmulEpilogue, Gpt2LikeShapesF16AndF32) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::kF16, DType::kF32}) {
    Compare({Op::kGelu, {2048, 768}, {768, 3072}, false, false, true}, dt);
    Compare({Op::kDGelu, {2048, 768}, {3072, 768}, false, true}, dt);
    Compare({Op::kBGrad, {2048, 768}, {2048, 3072}, true, false}, dt);
    Compare({Op::kBGrad, {2048, 768}, {2048, 768}, true, false, false, true}, dt);
  }
}

// ---- Small and odd shapes, every dtype ----

std::vector<Case> SmallCases() {
  std::vector<Case> out;
  const int64_t sizes[] = {1, 7, 8, 13, 33, 64};
  for (int64_t m : sizes)
    for (int64_t n : sizes)
      for (int64_t k : {1, 40}) {
        bool ta = (m + n + k) % 2 == 1, tb = (m * 3 + k) % 4 < 2;
        std::vector<int64_t> a = ta ? std::vector<int64_t>{k, m} : std::vector<int64_t>{m, k};
        std::vector<int64_t> b = tb ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n};
        out.push_back({Op::kGelu, a, b, ta, tb, n % 2 == 0});
        out.push_back({Op::kDGelu, a, b, ta, tb});
        out.push_back({Op::kBGrad, {k, m}, {k, n}, true, false, false, (m + n) % 2 == 0});
      }
  // Batched: shared b (one merged GEMM), both batched and shared a (batched GEMMs: unfused).
  out.push_back({Op::kGelu, {3, 33, 16}, {16, 24}, false, false, true});
  out.push_back({Op::kGelu, {3, 33, 16}, {3, 16, 24}, false, false, true});
  out.push_back({Op::kGelu, {33, 16}, {3, 24, 16}, false, true, false});
  out.push_back({Op::kDGelu, {2, 16, 33}, {2, 24, 33}, false, true});
  out.push_back({Op::kDGelu, {3, 7, 16}, {16, 40}, false, false});
  return out;
}

TEST(CudaMatmulEpilogue, SmallAndOddShapes) {
  ZT_SKIP_WITHOUT_CUDA();
  Counts n;
  const DType dtypes[] = {DType::kF32, DType::kBF16, DType::kF16};
  std::vector<Case> cases = SmallCases();
  for (size_t i = 0; i < cases.size(); ++i) Compare(cases[i], dtypes[i % 3]);  // each dtype a third of them
  for (size_t i = cases.size() - 5; i < cases.size(); ++i)                      // the batched ones in all three
    for (size_t d = 1; d < 3; ++d) Compare(cases[i], dtypes[(i + d) % 3]);
  EXPECT_EQ(n.Tiled(), 0) << "cuBLASLt refused a plain matmul";
  // Columns that are not a multiple of 8 cannot hold the aux matrix: those ran unfused.
  EXPECT_GT(n.Unfused(), 0);
}

TEST(CudaMatmulEpilogue, UnfusedPathForced) {
  ZT_SKIP_WITHOUT_CUDA();
  const std::vector<Case> cases = {
      {Op::kGelu, {64, 40}, {40, 24}, false, false, true},  {Op::kGelu, {40, 33}, {24, 40}, true, true, false},
      {Op::kDGelu, {64, 40}, {24, 40}, false, true},        {Op::kDGelu, {3, 7, 16}, {16, 40}, false, false},
      {Op::kBGrad, {96, 24}, {96, 40}, true, false},        {Op::kBGrad, {96, 24}, {96, 40}, true, false, false, true},
      {Op::kBGrad, {1, 7}, {1, 13}, true, false},
  };
  for (bool tiled : {false, true}) {
    SCOPED_TRACE(tiled ? "tiled matmul kernel" : "cuBLASLt matmul, then our kernels");
    Counts n;
    SetMatmulEpilogueCudaForceFallback(!tiled);
    SetMatmulCudaForceFallback(tiled);
    for (const Case& c : cases)
      for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) Compare(c, dt);
    SetMatmulEpilogueCudaForceFallback(false);
    SetMatmulCudaForceFallback(false);
    EXPECT_EQ(n.Unfused(), static_cast<int64_t>(cases.size() * 3)) << "every call must have run unfused";
    EXPECT_EQ(n.Tiled(), tiled ? static_cast<int64_t>(cases.size() * 3) : 0);
  }
}

// ---- Direct runs: misaligned tensors, repeatability, the algorithm cache ----

std::vector<testing::DirectTensor> DirectInputs(const Case& c, DType dt, size_t offset) {
  std::vector<testing::DirectTensor> out;
  uint64_t seed = 11;
  for (const DeviceInput& in : Inputs(c, dt)) {
    testing::DirectTensor t;
    t.dtype = dt;
    t.shape = in.shape;
    t.bytes = testing::ToBytes(dt, testing::RandomUniform(in.shape.numel(), seed++, in.lo, in.hi));
    t.offset = out.empty() ? offset : 0;  // a misaligned
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<testing::DirectTensor> DirectOutputs(const Case& c, DType dt, size_t offset) {
  std::vector<testing::DirectTensor> out;
  auto add = [&](Shape s) {
    testing::DirectTensor t;
    t.dtype = dt;
    t.shape = std::move(s);
    t.offset = offset;
    out.push_back(std::move(t));
  };
  add(ProductShape(c));
  if (c.op == Op::kGelu) add(ProductShape(c));  // pre
  if (c.op == Op::kBGrad) add(Shape{c.bias_of_a ? Shape(c.a)[-1] : Shape(c.b)[-1]});
  return out;
}

TEST(CudaMatmulEpilogue, MisalignedTensors) {
  ZT_SKIP_WITHOUT_CUDA();
  std::unique_ptr<Backend> cuda = testing::MakeCudaBackend();
  CpuBackend cpu;
  const std::vector<Case> cases = {
      {Op::kGelu, {64, 40}, {40, 24}, false, false, true}, {Op::kDGelu, {64, 40}, {24, 40}, false, true},
      {Op::kBGrad, {96, 24}, {96, 40}, true, false},       {Op::kBGrad, {96, 24}, {96, 40}, true, false, false, true},
      {Op::kGelu, {2048, 1024}, {1024, 1024}, false, false, true},  // >= 1 GFLOP: the plain matmul pads
  };
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
    size_t es = DTypeSize(dt);
    for (size_t off : {es, 3 * es, size_t{8}}) {
      for (const Case& c : cases) {
        for (bool outputs_too : {false, true}) {  // aligned outputs: the fused path with a misaligned a
          SCOPED_TRACE(Name(c, dt) + " offset " + std::to_string(off) + (outputs_too ? " (outputs too)" : ""));
          auto in = DirectInputs(c, dt, off);
          auto outs = DirectOutputs(c, dt, outputs_too ? off : 0);
          auto ref = testing::RunKernelDirect(cpu, OpName(c.op), Attrs(c), in, outs);
          auto got = testing::RunKernelDirect(*cuda, OpName(c.op), Attrs(c), in, outs);
          ASSERT_EQ(ref.size(), got.size());
          for (size_t i = 0; i < ref.size(); ++i)
            testing::ExpectNear("output " + std::to_string(i), dt, ref[i], got[i], TolFor(c, dt));
        }
      }
    }
  }
}

TEST(CudaMatmulEpilogue, RepeatableAndCachedOncePerProblem) {
  ZT_SKIP_WITHOUT_CUDA();
  std::unique_ptr<Backend> cuda = testing::MakeCudaBackend();
  const std::vector<Case> cases = {
      {Op::kGelu, {4096, 768}, {768, 3072}, false, false, true},
      {Op::kDGelu, {4096, 768}, {3072, 768}, false, true},
      {Op::kBGrad, {4096, 768}, {4096, 3072}, true, false},
      {Op::kBGrad, {4096, 2304}, {4096, 768}, true, false, false, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(Name(c, DType::kBF16));
    auto in = DirectInputs(c, DType::kBF16, 0);
    auto outs = DirectOutputs(c, DType::kBF16, 0);
    auto first = testing::RunKernelDirect(*cuda, OpName(c.op), Attrs(c), in, outs);
    int64_t cached = MatmulCudaCachedAlgos();
    auto second = testing::RunKernelDirect(*cuda, OpName(c.op), Attrs(c), in, outs);
    EXPECT_EQ(MatmulCudaCachedAlgos(), cached) << "the same problem asked the heuristic again";
    ASSERT_EQ(first.size(), second.size());
    for (size_t i = 0; i < first.size(); ++i)
      testing::ExpectBitwiseEqual("output " + std::to_string(i), DType::kBF16, first[i], second[i]);
  }
}

// The fused and the plain matmul of one shape are different problems to the algorithm cache.
TEST(CudaMatmulEpilogue, EpilogueIsPartOfTheCacheKey) {
  ZT_SKIP_WITHOUT_CUDA();
  Case c{Op::kGelu, {96, 200}, {200, 136}, false, false, true};
  Compare(c, DType::kBF16);
  int64_t cached = MatmulCudaCachedAlgos();
  CompareWithCpu(Inputs(c, DType::kBF16), [](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return std::vector<ir::Value*>{b.Emit1("matmul", v, {{"trans_a", false}, {"trans_b", false}}, "out")};
  });
  EXPECT_EQ(MatmulCudaCachedAlgos(), cached + 1);
}

}  // namespace
}  // namespace zt
