// CUDA cross_entropy / cross_entropy_bwd against the CPU reference: loss and lse (f32), and the
// logits' gradient through autodiff, for f32/bf16/f16 logits and i32/i64 targets; 1 and 3 rows,
// V = 1, 7, 33, 1000, the GPT-2 vocabulary 50257 (odd: rows start at every alignment, so the
// vector body sits between scalar heads and tails), Llama 3's 128256, and the GPT-2 124M batch of
// 16384 x 50257 bf16 logits; logits spread over [-8, 8] and [-30, 30] so the online softmax
// rescales. ignore_index: rows ignored at random (the attribute set to an id that occurs), every
// row ignored (loss 0, zero gradients), and -100 rows placed explicitly in direct runs. Direct
// runs also cover misaligned tensors, bit-identical repeats, and out-of-range targets (NaN loss,
// NaN gradient row, the row recorded in the device flag, never read). classes < V (a padded
// vocabulary): GPT-2's 50257 classes in 50304 columns and small odd cases, through autodiff and in
// direct runs whose padding holds large garbage (1e4), misaligned too; a target in the padding is
// out of range.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "direct_kernel.h"
#include "ir/ops/cross_entropy.h"
#include "support/device_compare.h"
#include "support/graph_runner.h"
#ifdef ZT_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#include "kernels/cuda/cross_entropy.cuh"
#endif

namespace zt {
namespace {

using testing::CompareOptions;
using testing::CompareWithCpu;
using testing::DirectTensor;
using testing::Tolerance;

const DType kFloatTypes[] = {DType::kF32, DType::kBF16, DType::kF16};

// Gradients are tiny ((p - onehot) / rows): compare them relative to their size (one or two ulps
// of the storage type), not within the default absolute tolerance that every one of them meets.
// f16's absolute term is its smallest subnormal, where one rounding step is a large ratio. In f32,
// lse may differ by one ulp (its sums run in another order), which moves p by ~1e-6 relative and
// p - 1 (the target's term) by ~1e-6 absolute: hence f32's terms.
Tolerance GradTolerance(DType dt) {
  switch (dt) {
    case DType::kBF16: return {1e-30, 1.0 / 64};
    case DType::kF16: return {6e-8, 4e-3};
    default: return {1e-6, 1e-4};
  }
}

struct Case {
  Shape logits;
  int64_t index_max;  // targets in [0, index_max)
  int64_t ignore_index;
  float lo, hi;
  int64_t classes = 0;  // the op's attribute (0: every column)
};

void CompareCe(DType dt, DType target_type, const Case& k, bool gradients) {
  SCOPED_TRACE(std::string(DTypeName(dt)) + " logits " + k.logits.ToString() + " targets " + DTypeName(target_type) +
               " < " + std::to_string(k.index_max) + " ignore " + std::to_string(k.ignore_index) + " range " +
               std::to_string(k.hi) + " classes " + std::to_string(k.classes) + (gradients ? " with gradients" : ""));
  CompareOptions o;
  o.gradients = gradients;
  if (gradients) o.tolerance = GradTolerance(dt);
  testing::DeviceInput targets{"targets", k.logits.Slice(0, -1), target_type};
  targets.index_max = k.index_max;
  int64_t ignore = k.ignore_index, classes = k.classes;
  CompareWithCpu({{"logits", k.logits, dt, k.lo, k.hi}, targets},
                 [ignore, classes](ir::Builder& b, const std::vector<ir::Value*>& v) {
                   ir::Value* loss = ir::ops::CrossEntropy(b, v[0], v[1], ignore, "ce", classes);
                   return std::vector<ir::Value*>{loss, loss->producer->outputs[1]};
                 },
                 o);
}

// Every case in every float dtype, forward and with gradients; the target dtype alternates
// between i32 and i64.
template <size_t N>
void CompareEveryDType(const Case (&cases)[N]) {
  int i = 0;
  for (DType dt : kFloatTypes) {
    for (const Case& k : cases) {
      DType tt = (i++ % 2) ? DType::kI64 : DType::kI32;
      CompareCe(dt, tt, k, false);
      CompareCe(dt, tt, k, true);
    }
  }
}

TEST(CudaCrossEntropy, MatchesCpu) {
  ZT_SKIP_WITHOUT_CUDA();
  const Case cases[] = {
      {{1, 1}, 1, -100, -8, 8},         {{3, 7}, 7, -100, -8, 8},         {{1, 33}, 33, -100, -8, 8},
      {{7, 1000}, 1000, -100, -8, 8},   {{3, 50257}, 50257, -100, -8, 8}, {{2, 128256}, 128256, -100, -8, 8},
      {{2, 5, 50257}, 50257, -100, -30, 30}, {{64, 1000}, 1000, -100, -30, 30},
  };
  CompareEveryDType(cases);
}

TEST(CudaCrossEntropy, IgnoredRows) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    // Targets in [0, 5) with ignore_index 2: about a fifth of the rows are ignored.
    CompareCe(dt, DType::kI32, {{64, 5}, 5, 2, -8, 8}, true);
    // A large vocabulary whose targets are 0, 1 or 2, with 0 ignored.
    CompareCe(dt, DType::kI64, {{9, 50257}, 3, 0, -8, 8}, true);
    // Every row ignored: the loss is 0 and every gradient is 0.
    CompareCe(dt, DType::kI32, {{7, 1000}, 1, 0, -8, 8}, true);
    CompareCe(dt, DType::kI64, {{1, 33}, 1, 0, -8, 8}, false);
  }
}

TEST(CudaCrossEntropy, Gpt2Logits) {
  ZT_SKIP_WITHOUT_CUDA();
  CompareCe(DType::kBF16, DType::kI32, {{16, 1024, 50257}, 50257, -100, -8, 8}, true);
}

// classes < V: the padded vocabulary of the model builders (GPT-2: 50257 classes in 50304 columns)
// and small odd paddings. Targets cover [0, classes); the padding's gradient must be written (the
// GPU's outputs are poisoned) as the CPU's exact zeros.
TEST(CudaCrossEntropy, PaddedClassesMatchCpu) {
  ZT_SKIP_WITHOUT_CUDA();
  const Case cases[] = {
      {{3, 50304}, 50257, -100, -8, 8, 50257}, {{2, 5, 50304}, 50257, -100, -30, 30, 50257},
      {{5, 40}, 33, -100, -8, 8, 33},          {{4, 8}, 1, -100, -8, 8, 1},
      {{6, 13}, 12, 3, -8, 8, 12},             {{7, 1000}, 999, -100, -8, 8, 999},
      {{2, 128}, 50, -100, -8, 8, 50},
  };
  CompareEveryDType(cases);
}

TEST(CudaCrossEntropy, Gpt2PaddedLogits) {
  ZT_SKIP_WITHOUT_CUDA();
  CompareCe(DType::kBF16, DType::kI32, {{16, 1024, 50304}, 50257, -100, -8, 8, 50257}, true);
}

// ---- Direct runs ----

std::unique_ptr<Backend>& Cuda() {
  static std::unique_ptr<Backend> b = testing::MakeCudaBackend();
  return b;
}

DirectTensor Targets(DType tt, const std::vector<int64_t>& v) {
  DirectTensor t;
  t.dtype = tt;
  t.shape = Shape{static_cast<int64_t>(v.size())};
  t.bytes.resize(v.size() * DTypeSize(tt));
  for (size_t i = 0; i < v.size(); ++i) {
    if (tt == DType::kI32) {
      int32_t x = static_cast<int32_t>(v[i]);
      std::memcpy(t.bytes.data() + 4 * i, &x, 4);
    } else {
      std::memcpy(t.bytes.data() + 8 * i, &v[i], 8);
    }
  }
  return t;
}

DirectTensor Floats(DType dt, Shape s, uint64_t seed, size_t offset, float lo = -8.0f, float hi = 8.0f) {
  DirectTensor t;
  t.dtype = dt;
  t.shape = std::move(s);
  t.bytes = testing::ToBytes(dt, testing::RandomUniform(t.shape.numel(), seed, lo, hi));
  t.offset = offset;
  return t;
}

DirectTensor Out(DType dt, Shape s, size_t offset = 0) {
  DirectTensor t;
  t.dtype = dt;
  t.shape = std::move(s);
  t.offset = offset;
  return t;
}

// Forward and backward on the CPU and the GPU from the same tensors (the backward's lse is the
// CPU forward's); returns nothing, adds failures. Returns the GPU's dlogits bytes.
std::vector<char> DirectBoth(DType dt, const DirectTensor& logits, const DirectTensor& targets, size_t grad_offset,
                             int64_t classes = 0) {
  const int64_t rows = targets.shape.numel();
  CpuBackend cpu;
  const ir::AttrMap attrs = {{"classes", classes}};
  std::vector<DirectTensor> fwd_out = {Out(DType::kF32, {}), Out(DType::kF32, {rows})};
  auto ref = testing::RunKernelDirect(cpu, "cross_entropy", attrs, {logits, targets}, fwd_out);
  auto got = testing::RunKernelDirect(*Cuda(), "cross_entropy", attrs, {logits, targets}, fwd_out);
  testing::ExpectNear("loss", DType::kF32, ref[0], got[0], testing::DefaultTolerance(DType::kF32));
  testing::ExpectNear("lse", DType::kF32, ref[1], got[1], testing::DefaultTolerance(DType::kF32));
  DirectTensor dloss = Out(DType::kF32, {});
  dloss.bytes = testing::ToBytes(DType::kF32, {0.75f});
  DirectTensor lse = Out(DType::kF32, {rows});
  lse.bytes = ref[1];
  std::vector<DirectTensor> bwd_out = {Out(dt, logits.shape, grad_offset)};
  auto gref = testing::RunKernelDirect(cpu, "cross_entropy_bwd", attrs, {dloss, logits, targets, lse}, bwd_out);
  auto ggot = testing::RunKernelDirect(*Cuda(), "cross_entropy_bwd", attrs, {dloss, logits, targets, lse}, bwd_out);
  testing::ExpectNear("dlogits", dt, gref[0], ggot[0], GradTolerance(dt));
  return ggot[0];
}

TEST(CudaCrossEntropy, ExplicitIgnoredRowsAndMisalignedTensors) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    const size_t es = DTypeSize(dt);
    for (int64_t v : {int64_t{7}, int64_t{1000}, int64_t{50257}}) {
      for (size_t off : {size_t{0}, es, 3 * es}) {
        SCOPED_TRACE(std::string(DTypeName(dt)) + " V " + std::to_string(v) + " offset " + std::to_string(off));
        const int64_t rows = 6;
        std::vector<int64_t> t = {v - 1, -100, 0, v / 2, -100, 1 % v};
        DirectTensor logits = Floats(dt, {rows, v}, 31, off);
        DirectBoth(dt, logits, Targets(DType::kI64, t), 0);        // logits misaligned, gradient aligned
        DirectBoth(dt, logits, Targets(DType::kI32, t), off);      // both misaligned alike
        DirectBoth(dt, logits, Targets(DType::kI32, t), off + es);  // misaligned differently: scalar path
      }
    }
    // Every row ignored (-100).
    DirectBoth(dt, Floats(dt, {3, 1000}, 32, 0), Targets(DType::kI32, {-100, -100, -100}), 0);
  }
}

// Padded logits whose padding holds large garbage: the GPU must neither read it (an lse near 1e4)
// nor leave it in dlogits (exact zeros), at every alignment of the rows and of the gradient.
TEST(CudaCrossEntropy, PaddingWithGarbageIsNeverRead) {
  ZT_SKIP_WITHOUT_CUDA();
  struct Pad {
    int64_t v, classes;
  };
  for (DType dt : kFloatTypes) {
    const size_t es = DTypeSize(dt);
    for (Pad p : {Pad{50304, 50257}, Pad{40, 33}, Pad{16, 9}, Pad{1003, 1000}}) {
      for (size_t off : {size_t{0}, es, 3 * es}) {
        SCOPED_TRACE(std::string(DTypeName(dt)) + " V " + std::to_string(p.v) + " classes " +
                     std::to_string(p.classes) + " offset " + std::to_string(off));
        const int64_t rows = 6;
        std::vector<float> x = testing::RandomUniform(rows * p.v, 71, -8, 8);
        const float garbage[] = {1e4f, -1e4f, 5e3f, 0.0f};
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = p.classes; j < p.v; ++j) x[r * p.v + j] = garbage[(r + j) % 4];
        DirectTensor logits;
        logits.dtype = dt;
        logits.shape = Shape{rows, p.v};
        logits.bytes = testing::ToBytes(dt, x);
        logits.offset = off;
        std::vector<int64_t> t = {p.classes - 1, -100, 0, p.classes / 2, -100, 1 % p.classes};
        for (size_t goff : {off, off + es}) {
          std::vector<char> d = DirectBoth(dt, logits, Targets(DType::kI32, t), goff, p.classes);
          std::vector<double> dv = testing::FromBytes(dt, d);
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = p.classes; j < p.v; ++j)
              ASSERT_EQ(dv[r * p.v + j], 0.0) << "padding gradient, row " << r << " col " << j;
        }
      }
    }
  }
}

TEST(CudaCrossEntropy, BitIdenticalRunToRun) {
  ZT_SKIP_WITHOUT_CUDA();
  const int64_t rows = 512, v = 50257;
  DirectTensor logits = Floats(DType::kBF16, {rows, v}, 41, 0);
  DirectTensor targets = Targets(DType::kI32, testing::RandomInts(rows, 42, 0, v));
  std::vector<DirectTensor> fwd_out = {Out(DType::kF32, {}), Out(DType::kF32, {rows})};
  auto a = testing::RunKernelDirect(*Cuda(), "cross_entropy", {}, {logits, targets}, fwd_out);
  auto b = testing::RunKernelDirect(*Cuda(), "cross_entropy", {}, {logits, targets}, fwd_out);
  testing::ExpectBitwiseEqual("loss", DType::kF32, a[0], b[0]);
  testing::ExpectBitwiseEqual("lse", DType::kF32, a[1], b[1]);
}

#ifdef ZT_WITH_CUDA
TEST(CudaCrossEntropy, OutOfRangeTargetsAreRecordedNotRead) {
  ZT_SKIP_WITHOUT_CUDA();
  cudaStream_t s = CudaStreamOf(Cuda()->stream(StreamKind::kCompute));
  TakeCrossEntropyTargetErrors(s);  // start clean
  const int64_t v = 100;
  std::vector<int64_t> t = {5, -100, 100, 7, -3, 99};  // bad at rows 2 and 4
  const int64_t rows = static_cast<int64_t>(t.size());
  DirectTensor logits = Floats(DType::kF32, {rows, v}, 51, 0);
  DirectTensor targets = Targets(DType::kI64, t);
  auto fwd = testing::RunKernelDirect(*Cuda(), "cross_entropy", {}, {logits, targets},
                                      {Out(DType::kF32, {}), Out(DType::kF32, {rows})});
  float loss;
  std::memcpy(&loss, fwd[0].data(), 4);
  EXPECT_TRUE(std::isnan(loss)) << "a bad target must poison the loss, got " << loss;
  const float* lse = reinterpret_cast<const float*>(fwd[1].data());
  for (int64_t r = 0; r < rows; ++r) EXPECT_TRUE(std::isfinite(lse[r])) << "row " << r;
  CrossEntropyTargetErrors e = TakeCrossEntropyTargetErrors(s);
  EXPECT_EQ(e.count, 2);
  EXPECT_EQ(e.row, 2);
  EXPECT_EQ(e.target, 100);
  EXPECT_EQ(TakeCrossEntropyTargetErrors(s).count, 0) << "the record is cleared once read";

  DirectTensor dloss = Out(DType::kF32, {});
  dloss.bytes = testing::ToBytes(DType::kF32, {1.0f});
  DirectTensor lse_in = Out(DType::kF32, {rows});
  lse_in.bytes = fwd[1];
  auto bwd = testing::RunKernelDirect(*Cuda(), "cross_entropy_bwd", {}, {dloss, logits, targets, lse_in},
                                      {Out(DType::kF32, {rows, v})});
  const float* g = reinterpret_cast<const float*>(bwd[0].data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < v; ++j) {
      float x = g[r * v + j];
      if (r == 2 || r == 4) {
        EXPECT_TRUE(std::isnan(x)) << "row " << r << " col " << j;
      } else if (r == 1) {
        EXPECT_EQ(x, 0.0f) << "ignored row, col " << j;
      } else {
        EXPECT_TRUE(std::isfinite(x)) << "row " << r << " col " << j;
      }
    }
  }
  e = TakeCrossEntropyTargetErrors(s);
  EXPECT_EQ(e.count, 2);
  EXPECT_EQ(e.row, 2);
  EXPECT_EQ(e.target, 100);
}

// With classes = 90 of V = 100, a target in the padding (95) is out of range like 100.
TEST(CudaCrossEntropy, TargetInPaddingIsOutOfRange) {
  ZT_SKIP_WITHOUT_CUDA();
  cudaStream_t s = CudaStreamOf(Cuda()->stream(StreamKind::kCompute));
  TakeCrossEntropyTargetErrors(s);
  const int64_t v = 100, rows = 3;
  const ir::AttrMap attrs = {{"classes", int64_t{90}}};
  DirectTensor logits = Floats(DType::kF32, {rows, v}, 52, 0);
  DirectTensor targets = Targets(DType::kI32, {89, 95, 0});
  auto fwd = testing::RunKernelDirect(*Cuda(), "cross_entropy", attrs, {logits, targets},
                                      {Out(DType::kF32, {}), Out(DType::kF32, {rows})});
  float loss;
  std::memcpy(&loss, fwd[0].data(), 4);
  EXPECT_TRUE(std::isnan(loss)) << loss;
  CrossEntropyTargetErrors e = TakeCrossEntropyTargetErrors(s);
  EXPECT_EQ(e.count, 1);
  EXPECT_EQ(e.row, 1);
  EXPECT_EQ(e.target, 95);
}
#endif

}  // namespace
}  // namespace zt
