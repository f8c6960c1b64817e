// CUDA rope against the CPU reference: forward and inverse rotations for f32/bf16/f16, theta 1e4
// (GPT-NeoX/Llama 2) and 5e5 (Llama 3), head dims whose half is odd or not a multiple of the vector
// width (D = 2, 6, 18: the scalar path) or is (D = 8, 64, 128), the Llama-8B shapes (T = 2048,
// 32 query heads and 8 key/value heads of D = 128) whose angles reach t = 2047 rad and so test that
// the angles follow the CPU's f32 arithmetic, gradients through autodiff (the inverse rotation),
// and misaligned tensors run directly (the scalar path).
#include <gtest/gtest.h>

#include "direct_kernel.h"
#include "ir/ops/rope.h"
#include "support/device_compare.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::CompareOptions;
using testing::CompareWithCpu;
using testing::DirectTensor;

const DType kFloatTypes[] = {DType::kF32, DType::kBF16, DType::kF16};

void CompareRope(DType dt, const Shape& s, double theta, bool inverse, bool gradients) {
  SCOPED_TRACE(std::string(DTypeName(dt)) + " x " + s.ToString() + " theta " + std::to_string(theta) +
               (inverse ? " inverse" : "") + (gradients ? " with gradients" : ""));
  CompareOptions o;
  o.gradients = gradients;
  CompareWithCpu({{"x", s, dt}},
                 [theta, inverse](ir::Builder& b, const std::vector<ir::Value*>& v) {
                   return std::vector<ir::Value*>{inverse ? ir::ops::RopeInverse(b, v[0], theta, "y")
                                                          : ir::ops::Rope(b, v[0], theta, "y")};
                 },
                 o);
}

TEST(CudaRope, MatchesCpu) {
  ZT_SKIP_WITHOUT_CUDA();
  const Shape shapes[] = {{1, 1, 1, 2}, {2, 7, 3, 8}, {1, 33, 2, 6}, {3, 5, 2, 18}, {2, 9, 4, 64}, {1, 17, 3, 128}};
  for (DType dt : kFloatTypes) {
    for (const Shape& s : shapes) {
      for (double theta : {10000.0, 500000.0}) {
        for (bool inverse : {false, true}) CompareRope(dt, s, theta, inverse, false);
      }
      CompareRope(dt, s, 10000.0, false, true);
    }
  }
}

TEST(CudaRope, Llama8bShapes) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::kF32, DType::kBF16}) {
    CompareRope(dt, Shape{1, 2048, 32, 128}, 500000.0, false, false);  // queries
    CompareRope(dt, Shape{2, 2048, 8, 128}, 500000.0, false, true);    // keys, with the backward
  }
}

// ---- Direct runs on misaligned tensors ----

std::unique_ptr<Backend>& Cuda() {
  static std::unique_ptr<Backend> b = testing::MakeCudaBackend();
  return b;
}

TEST(CudaRope, MisalignedTensors) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    const size_t es = DTypeSize(dt);
    for (int64_t d : {int64_t{16}, int64_t{128}}) {
      for (size_t in_off : {size_t{0}, es}) {
        SCOPED_TRACE(std::string(DTypeName(dt)) + " D " + std::to_string(d) + " input offset " +
                     std::to_string(in_off));
        const Shape s{2, 9, 3, d};
        DirectTensor x;
        x.dtype = dt;
        x.shape = s;
        x.bytes = testing::ToBytes(dt, testing::RandomUniform(s.numel(), 7));
        x.offset = in_off;
        DirectTensor y;
        y.dtype = dt;
        y.shape = s;
        y.offset = in_off == 0 ? es : 0;  // exactly one of the two misaligned
        CpuBackend cpu;
        ir::AttrMap attrs{{"theta", 10000.0}, {"inverse", true}};
        auto ref = testing::RunKernelDirect(cpu, "rope", attrs, {x}, {y});
        auto got = testing::RunKernelDirect(*Cuda(), "rope", attrs, {x}, {y});
        testing::ExpectNear("rope", dt, ref[0], got[0], testing::DefaultTolerance(dt));
      }
    }
  }
}

}  // namespace
}  // namespace zt
