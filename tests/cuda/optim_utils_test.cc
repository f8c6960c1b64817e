// CUDA optimizer utilities against the CPU reference (GPU; skipped without one): sum_squares over
// one and many inputs (more than one launch's worth of segments), mixed dtypes, chunk boundaries
// (65536 +- 1), small and GPT-2-sized tensors; accumulate (acc f32
// += x in f32/bf16/f16, bit-identical) and zero.
#include <gtest/gtest.h>

#include "ir/builder.h"
#include "ir/ops/optim_utils.h"
#include "support/device_compare.h"

namespace zt {
namespace {

using testing::CompareWithCpu;
using testing::DeviceInput;

TEST(CudaOptimUtils, SumSquaresSizesAndDTypes) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000}, int64_t{65535}, int64_t{65536}, int64_t{65537},
                      int64_t{3 * 65536 + 5}}) {
      SCOPED_TRACE(std::string(DTypeName(t)) + " n=" + std::to_string(n));
      CompareWithCpu({{"x", Shape{n}, t, -2, 2}}, [](ir::Builder& b, const std::vector<ir::Value*>& in) {
        return std::vector<ir::Value*>{ir::ops::SumSquares(b, in, "s")};
      });
    }
  }
}

TEST(CudaOptimUtils, SumSquaresOfManyMixedInputs) {
  ZT_SKIP_WITHOUT_CUDA();
  // 45 inputs (more than the 32 segments of one launch), mixed dtypes and sizes.
  std::vector<DeviceInput> in;
  const DType types[] = {DType::kF32, DType::kBF16, DType::kF16};
  for (int i = 0; i < 45; ++i) {
    int64_t n = (i % 5 == 0) ? 65536 * 2 + i : 1 + 37 * i;
    in.push_back({"g" + std::to_string(i), Shape{n}, types[i % 3]});
  }
  CompareWithCpu(in, [](ir::Builder& b, const std::vector<ir::Value*>& xs) {
    return std::vector<ir::Value*>{ir::ops::SumSquares(b, xs, "s")};
  });
}

TEST(CudaOptimUtils, SumSquaresOfGpt2SizedGradients) {
  ZT_SKIP_WITHOUT_CUDA();
  CompareWithCpu({{"wte", Shape{50257, 768}}, {"w", Shape{768, 3072}, DType::kBF16}, {"b", Shape{768}}},
                 [](ir::Builder& b, const std::vector<ir::Value*>& xs) {
                   return std::vector<ir::Value*>{ir::ops::SumSquares(b, xs, "s")};
                 });
}

TEST(CudaOptimUtils, AccumulateIsExact) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (Shape s : {Shape{1}, Shape{7}, Shape{33, 7}, Shape{1000}, Shape{16384, 768}}) {
      SCOPED_TRACE(std::string(DTypeName(t)) + " " + s.ToString());
      CompareWithCpu({{"acc", s, DType::kF32, -5, 5}, {"x", s, t}}, [](ir::Builder& b, const std::vector<ir::Value*>& in) {
        return std::vector<ir::Value*>{ir::ops::Accumulate(b, in[0], in[1], "acc2")};
      }, testing::ExactCompare());
    }
  }
}

TEST(CudaOptimUtils, ZeroEveryFloatDType) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (Shape s : {Shape{1}, Shape{33, 7}, Shape{16384, 768}}) {
      CompareWithCpu({{"x", s, t}}, [](ir::Builder& b, const std::vector<ir::Value*>& in) {
        return std::vector<ir::Value*>{ir::ops::Zero(b, in[0], "z")};
      }, testing::ExactCompare());
    }
  }
}

}  // namespace
}  // namespace zt
