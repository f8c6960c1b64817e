// CUDA constant family against the CPU reference (GPU; skipped without one): fill for every dtype
// (values that round in bf16/f16, all-equal-byte patterns that take the memset path, odd sizes
// and GPT-2-sized tensors) and arange for integer and floating dtypes (past 2^8 and 2^11, where
// bf16 and f16 start to round). Both must be bit-identical to the CPU: tolerance 0.
#include <gtest/gtest.h>

#include "ir/builder.h"
#include "ir/ops/constant.h"
#include "support/device_compare.h"

namespace zt {
namespace {

using testing::CompareWithCpu;

TEST(CudaConstant, FillEveryDTypeAndSize) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16, DType::kI32, DType::kI64, DType::kU8}) {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{33}, int64_t{1000}, int64_t{4099}}) {
      for (double v : {0.0, 1.0, -3.25, 0.1, 7.0, 255.0}) {
        SCOPED_TRACE(std::string(DTypeName(t)) + " n=" + std::to_string(n) + " value=" + std::to_string(v));
        CompareWithCpu({}, [&](ir::Builder& b, const std::vector<ir::Value*>&) {
          return std::vector<ir::Value*>{ir::ops::Fill(b, t, Shape{n}, v, "f")};
        }, testing::ExactCompare());
      }
    }
  }
}

TEST(CudaConstant, FillLargeShapes) {
  ZT_SKIP_WITHOUT_CUDA();
  // GPT-2 124M activations (B*T = 16384 rows of C = 768) and a Llama-8B matrix row block.
  for (DType t : {DType::kF32, DType::kBF16}) {
    CompareWithCpu({}, [&](ir::Builder& b, const std::vector<ir::Value*>&) {
      return std::vector<ir::Value*>{ir::ops::Fill(b, t, Shape{16384, 768}, -0.125, "a"),
                                     ir::ops::Fill(b, t, Shape{2048, 4096 + 3}, 1.0 / 3.0, "b")};
    }, testing::ExactCompare());
  }
}

TEST(CudaConstant, ArangeIntegersAndFloats) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType t : {DType::kI32, DType::kI64, DType::kF32, DType::kBF16, DType::kF16}) {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000}, int64_t{4097}, int64_t{50257}}) {
      SCOPED_TRACE(std::string(DTypeName(t)) + " n=" + std::to_string(n));
      CompareWithCpu({}, [&](ir::Builder& b, const std::vector<ir::Value*>&) {
        return std::vector<ir::Value*>{ir::ops::Arange(b, n, t, "r")};
      }, testing::ExactCompare());
    }
  }
}

}  // namespace
}  // namespace zt
