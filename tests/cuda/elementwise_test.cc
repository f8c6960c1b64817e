// CUDA elementwise kernels (add, mul, scale, reduce_sum_to, broadcast_to) against the CPU
// reference. add, mul, scale and broadcast_to compute in f32 and round once, exactly like the CPU,
// so they must agree bit for bit (tolerance 0); reduce_sum_to sums in double on both sides in a
// different order, so it may differ by one ulp of the storage type. Shapes: odd sizes (1, 7, 33,
// 1000), suffix broadcasts of every rank, a rank-0 operand, GPT-2 sizes (16384 x 768 rows; the
// bias gradients 16384 x 768, 2304, 3072); the misaligned (scalar) paths are reached by running
// the kernels directly on tensors placed 2..12 bytes past a 16-byte boundary, and reduce_sum_to's
// scalar path must give the vector path's bits; gradients of broadcast add/mul through autodiff.
#include <gtest/gtest.h>

#include "direct_kernel.h"
#include "ir/ops/elementwise.h"
#include "support/device_compare.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::CompareOptions;
using testing::CompareWithCpu;
using testing::DeviceInput;
using testing::Tolerance;

const DType kFloatTypes[] = {DType::kF32, DType::kBF16, DType::kF16};

// One ulp of the storage type, relative (an upper bound for any value).
Tolerance OneUlp(DType t) {
  switch (t) {
    case DType::kBF16: return {1e-30, 1.0 / 128};
    case DType::kF16: return {1e-30, 1.0 / 1024};
    default: return {1e-30, 1.0 / (1 << 22)};
  }
}

struct BinaryCase {
  Shape x, y;
};
const BinaryCase kBinaryCases[] = {
    {{1}, {1}},        {{7}, {7}},          {{3, 33}, {33}},     {{1000, 7}, {7}},       {{5, 1000}, {1000}},
    {{2, 7, 13}, {7, 13}}, {{9}, {}},       {{33, 1}, {1}},      {{16384, 768}, {768}},  {{4, 1000}, {4, 1000}},
};

TEST(CudaElementwise, AddAndMulBitExact) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    for (const auto& c : kBinaryCases) {
      SCOPED_TRACE(std::string(DTypeName(dt)) + " x " + c.x.ToString() + " y " + c.y.ToString());
      CompareWithCpu({{"x", c.x, dt, -3.0f, 3.0f}, {"y", c.y, dt, -2.0f, 2.0f}},
                     [](ir::Builder& b, const std::vector<ir::Value*>& v) {
                       return std::vector<ir::Value*>{ir::ops::Add(b, v[0], v[1], "sum"),
                                                      ir::ops::Mul(b, v[0], v[1], "prod")};
                     },
                     testing::ExactCompare());
    }
  }
}

TEST(CudaElementwise, ScaleBitExact) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    for (Shape s : {Shape{1}, Shape{7}, Shape{33, 1000}, Shape{16384, 768}}) {
      for (double alpha : {0.5, -3.7, 1.0 / 3.0, 1e-3}) {
        SCOPED_TRACE(std::string(DTypeName(dt)) + " " + s.ToString() + " alpha " + std::to_string(alpha));
        CompareWithCpu({{"x", s, dt, -4.0f, 4.0f}},
                       [alpha](ir::Builder& b, const std::vector<ir::Value*>& v) {
                         return std::vector<ir::Value*>{ir::ops::Scale(b, v[0], alpha, "scaled")};
                       },
                       testing::ExactCompare());
      }
    }
  }
}

TEST(CudaElementwise, BroadcastToBitExact) {
  ZT_SKIP_WITHOUT_CUDA();
  const std::pair<Shape, Shape> cases[] = {{{768}, {16384, 768}}, {{7}, {3, 5, 7}}, {{}, {33}},
                                           {{33}, {1000, 33}},    {{1}, {7, 1}},     {{5, 8}, {3, 5, 8}}};
  for (DType dt : kFloatTypes) {
    for (const auto& [from, to] : cases) {
      SCOPED_TRACE(std::string(DTypeName(dt)) + " " + from.ToString() + " -> " + to.ToString());
      Shape target = to;
      CompareWithCpu({{"x", from, dt}},
                     [target](ir::Builder& b, const std::vector<ir::Value*>& v) {
                       return std::vector<ir::Value*>{ir::ops::BroadcastTo(b, v[0], target, "bc")};
                     },
                     testing::ExactCompare());
    }
  }
}

TEST(CudaElementwise, ReduceSumToWithinOneUlp) {
  ZT_SKIP_WITHOUT_CUDA();
  const std::pair<Shape, Shape> cases[] = {
      {{16384, 768}, {768}},  // GPT-2 bias gradient
      {{7, 33}, {33}},        {{1000, 1}, {1}},     {{100000}, {}},      {{2, 3, 5}, {3, 5}},
      {{4, 1000, 33}, {33}},  {{3, 50257}, {50257}}, {{1, 7}, {7}},       {{16384 * 48}, {}},
      {{33, 65}, {65}},
  };
  for (DType dt : kFloatTypes) {
    for (const auto& [from, to] : cases) {
      SCOPED_TRACE(std::string(DTypeName(dt)) + " " + from.ToString() + " -> " + to.ToString());
      Shape target = to;
      CompareOptions o;
      o.tolerance = OneUlp(dt);
      CompareWithCpu({{"x", from, dt}},
                     [target](ir::Builder& b, const std::vector<ir::Value*>& v) {
                       return std::vector<ir::Value*>{ir::ops::ReduceSumTo(b, v[0], target, "red")};
                     },
                     o);
    }
  }
}

// The two-pass column reduction on every path: the profiled GPT-2 bias gradients (16384 rows of
// 768, 2304, 3072: 16-byte vectors, many chunks, partials in the workspace), a wide suffix with few
// rows (one chunk: pass 1 writes the output), and odd shapes: rows 1, 7, 33, 1000 against m 1 (the
// single-sum kernel), 3, 7 (scalar), 8 (one vector), 769 (scalar), 3072 (vectors); many rows of
// few columns (the most chunks).
TEST(CudaElementwise, ReduceSumToShapes) {
  ZT_SKIP_WITHOUT_CUDA();
  std::vector<std::pair<Shape, Shape>> cases = {
      {{16384, 768}, {768}},       {{16384, 2304}, {2304}}, {{16384, 3072}, {3072}},
      {{16, 1024, 768}, {1024, 768}}, {{100000, 3}, {3}},   {{4096, 8}, {8}},
  };
  for (int64_t rows : {1, 7, 33, 1000}) {
    for (int64_t m : {1, 3, 7, 8, 769, 3072}) cases.push_back({Shape{rows, m}, Shape{m}});
  }
  for (DType dt : kFloatTypes) {
    for (const auto& [from, to] : cases) {
      if (dt != DType::kBF16 && from.numel() > (int64_t{1} << 25)) continue;  // the big ones in bf16 only
      int64_t m = to.numel();
      SCOPED_TRACE(std::string(DTypeName(dt)) + " " + from.ToString() + " -> " + to.ToString() + " (" +
                   std::to_string(ir::ReduceSumToChunks(from.numel() / m, m)) + " chunks)");
      Shape target = to;
      CompareOptions o;
      o.tolerance = OneUlp(dt);
      CompareWithCpu({{"x", from, dt}},
                     [target](ir::Builder& b, const std::vector<ir::Value*>& v) {
                       return std::vector<ir::Value*>{ir::ops::ReduceSumTo(b, v[0], target, "red")};
                     },
                     o);
    }
  }
}

// Sums whose terms cancel: the result is far smaller than the terms, so a sum in f32 (or in a
// different f32 order) would be visibly off; double accumulation on both sides agrees.
TEST(CudaElementwise, ReduceSumToCancellingTerms) {
  ZT_SKIP_WITHOUT_CUDA();
  CompareOptions o;
  o.tolerance = OneUlp(DType::kF32);
  CompareWithCpu({{"x", Shape{20000, 40}, DType::kF32, -1000.0f, 1000.0f}},
                 [](ir::Builder& b, const std::vector<ir::Value*>& v) {
                   return std::vector<ir::Value*>{ir::ops::ReduceSumTo(b, v[0], Shape{40}, "red")};
                 },
                 o);
}

TEST(CudaElementwise, BroadcastGradients) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::kF32, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(dt));
    CompareOptions o;
    o.gradients = true;
    CompareWithCpu({{"x", Shape{33, 7, 13}, dt}, {"y", Shape{7, 13}, dt}},
                   [](ir::Builder& b, const std::vector<ir::Value*>& v) {
                     ir::Value* s = ir::ops::Add(b, v[0], v[1], "sum");
                     return std::vector<ir::Value*>{ir::ops::Mul(b, s, v[1], "prod"), ir::ops::Scale(b, s, 0.25, "sc")};
                   },
                   o);
  }
}

// ---- Direct runs on misaligned tensors ----

std::unique_ptr<Backend>& Cuda() {
  static std::unique_ptr<Backend> b = testing::MakeCudaBackend();
  return b;
}

testing::DirectTensor Input(DType dt, Shape s, uint64_t seed, size_t offset) {
  testing::DirectTensor t;
  t.dtype = dt;
  t.shape = s;
  t.bytes = testing::ToBytes(dt, testing::RandomUniform(s.numel(), seed, -2.0f, 2.0f));
  t.offset = offset;
  return t;
}

testing::DirectTensor Output(DType dt, Shape s, size_t offset) {
  testing::DirectTensor t;
  t.dtype = dt;
  t.shape = s;
  t.offset = offset;
  return t;
}

// Runs op on the CPU and the GPU with the same tensors and offsets; checks each output.
void Direct(const std::string& op, ir::AttrMap attrs, const std::vector<testing::DirectTensor>& in,
            const std::vector<testing::DirectTensor>& out, std::optional<Tolerance> tol = std::nullopt) {
  CpuBackend cpu;
  auto ref = testing::RunKernelDirect(cpu, op, attrs, in, out);
  auto got = testing::RunKernelDirect(*Cuda(), op, attrs, in, out);
  for (size_t k = 0; k < ref.size(); ++k) {
    if (tol) testing::ExpectNear(op + " output " + std::to_string(k), out[k].dtype, ref[k], got[k], *tol);
    else testing::ExpectBitwiseEqual(op + " output " + std::to_string(k), out[k].dtype, ref[k], got[k]);
  }
}

TEST(CudaElementwise, MisalignedTensors) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    size_t es = DTypeSize(dt);
    for (size_t off : {es, 2 * es, 3 * es, size_t{16} - es}) {
      for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{33}, int64_t{1000}, int64_t{4099}}) {
        SCOPED_TRACE(std::string(DTypeName(dt)) + " offset " + std::to_string(off) + " n " + std::to_string(n));
        Shape xs{3, n}, ys{n};
        // x misaligned, y and out aligned; then out misaligned alone.
        Direct("add", {}, {Input(dt, xs, 1, off), Input(dt, ys, 2, 0)}, {Output(dt, xs, 0)});
        Direct("mul", {}, {Input(dt, xs, 3, 0), Input(dt, ys, 4, off)}, {Output(dt, xs, 0)});
        Direct("mul", {}, {Input(dt, xs, 5, 0), Input(dt, ys, 6, 0)}, {Output(dt, xs, off)});
        Direct("scale", {{"alpha", 0.75}}, {Input(dt, xs, 7, off)}, {Output(dt, xs, off)});
        Direct("broadcast_to", {{"shape", xs.dims()}}, {Input(dt, ys, 8, off)}, {Output(dt, xs, 0)});
        Direct("reduce_sum_to", {{"shape", ys.dims()}}, {Input(dt, xs, 9, off)}, {Output(dt, ys, off)}, OneUlp(dt));
      }
    }
  }
}

// The summation order depends on (rows, m) only: the vector path (aligned x) and the scalar path
// (x misaligned) give the same bits, and so do two runs; with enough rows for several chunks.
TEST(CudaElementwise, ReduceSumToVectorAndScalarPathsAgreeBitwise) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    const size_t es = DTypeSize(dt);
    for (auto [rows, m] : {std::pair<int64_t, int64_t>{16384, 768}, {1000, 3072}, {333, 64}, {77, 8}}) {
      SCOPED_TRACE(std::string(DTypeName(dt)) + " " + std::to_string(rows) + " x " + std::to_string(m) + " (" +
                   std::to_string(ir::ReduceSumToChunks(rows, m)) + " chunks)");
      ASSERT_GT(ir::ReduceSumToChunks(rows, m), 1);
      ir::AttrMap attrs{{"shape", std::vector<int64_t>{m}}};
      auto aligned = testing::RunKernelDirect(*Cuda(), "reduce_sum_to", attrs, {Input(dt, {rows, m}, 21, 0)},
                                              {Output(dt, {m}, 0)});
      auto again = testing::RunKernelDirect(*Cuda(), "reduce_sum_to", attrs, {Input(dt, {rows, m}, 21, 0)},
                                            {Output(dt, {m}, 0)});
      auto scalar = testing::RunKernelDirect(*Cuda(), "reduce_sum_to", attrs, {Input(dt, {rows, m}, 21, es)},
                                             {Output(dt, {m}, es)});
      testing::ExpectBitwiseEqual("run to run", dt, aligned[0], again[0]);
      testing::ExpectBitwiseEqual("vector vs scalar path", dt, aligned[0], scalar[0]);
      // And both agree with the CPU (misaligned: the scalar pass 1 and the chunk partials).
      Direct("reduce_sum_to", attrs, {Input(dt, {rows, m}, 21, es)}, {Output(dt, {m}, es)}, OneUlp(dt));
    }
  }
}

}  // namespace
}  // namespace zt
