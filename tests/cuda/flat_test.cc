// CUDA flat-buffer family against the CPU reference (GPU; skipped without one): pack (mixed input
// dtypes, conversions both ways, zero padding, odd sizes, a GPT-2-sized bucket), unpack_into (in
// place, converting into each target's dtype) and view_slice (a view: reading it, and a copy that
// consumes it). Conversions round like the CPU, so results are bit-identical: tolerance 0.
#include <gtest/gtest.h>

#include "ir/builder.h"
#include "ir/ops/flat.h"
#include "ir/ops/views.h"
#include "support/device_compare.h"

namespace zt {
namespace {

using testing::CompareWithCpu;

TEST(CudaFlat, PackConvertsAndPads) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType flat : {DType::kF32, DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(DTypeName(flat));
    CompareWithCpu({{"a", Shape{1}, DType::kF32, -3, 3},
                    {"b", Shape{7, 3}, DType::kBF16, -3, 3},
                    {"c", Shape{1000}, DType::kF16, -3, 3},
                    {"d", Shape{33}, DType::kF32, -1e-3f, 1e-3f},
                    {"e", Shape{4099}, DType::kF32, -70000, 70000}},
                   [&](ir::Builder& b, const std::vector<ir::Value*>& in) {
                     // 1 + 21 + 1000 + 33 + 4099 = 5154 elements, padded to 5163.
                     return std::vector<ir::Value*>{ir::ops::Pack(b, in, 5163, flat, "flat")};
                   },
                   testing::ExactCompare());
  }
}

TEST(CudaFlat, PackAGpt2SizedBucket) {
  ZT_SKIP_WITHOUT_CUDA();
  // wte [50257, 768] and a block's c_attn [768, 2304] + bias, f32 -> bf16 (the gradient bucket of
  // data parallelism in bf16) and f32 -> f32.
  for (DType flat : {DType::kBF16, DType::kF32}) {
    CompareWithCpu({{"wte", Shape{50257, 768}}, {"w", Shape{768, 2304}}, {"bias", Shape{2304}}},
                   [&](ir::Builder& b, const std::vector<ir::Value*>& in) {
                     int64_t n = 50257 * 768 + 768 * 2304 + 2304;
                     return std::vector<ir::Value*>{ir::ops::Pack(b, in, n + 512, flat, "flat")};
                   },
                   testing::ExactCompare());
  }
}

TEST(CudaFlat, UnpackIntoConvertsIntoEachTargetInPlace) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType flat : {DType::kF32, DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(DTypeName(flat));
    CompareWithCpu({{"flat", Shape{5200}, flat, -4, 4},
                    {"p1", Shape{1}, DType::kF32},
                    {"p2", Shape{7, 3}, DType::kBF16},
                    {"p3", Shape{1000}, DType::kF16},
                    {"p4", Shape{4099}, DType::kF32}},
                   [&](ir::Builder& b, const std::vector<ir::Value*>& in) {
                     return ir::ops::UnpackInto(b, in[0], {in[1], in[2], in[3], in[4]}, "u");
                   },
                   testing::ExactCompare());
  }
  // Large: a GPT-2 wte-sized slice, bf16 flat into an f32 target.
  CompareWithCpu({{"flat", Shape{50257 * 768 + 100}, DType::kBF16}, {"wte", Shape{50257, 768}, DType::kF32}},
                 [](ir::Builder& b, const std::vector<ir::Value*>& in) {
                   return ir::ops::UnpackInto(b, in[0], {in[1]}, "u");
                 },
                 testing::ExactCompare());
}

TEST(CudaFlat, ViewSliceIsAView) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(DTypeName(t));
    CompareWithCpu({{"x", Shape{1000}, t}}, [](ir::Builder& b, const std::vector<ir::Value*>& in) {
      ir::Value* s1 = ir::ops::ViewSlice(b, in[0], 7, Shape{33, 3}, "s1");   // odd offset
      ir::Value* s2 = ir::ops::ViewSlice(b, in[0], 0, Shape{1}, "s2");
      ir::Value* s3 = ir::ops::ViewSlice(b, in[0], 999, Shape{1}, "s3");
      return std::vector<ir::Value*>{s1, s2, s3, ir::ops::Transpose(b, s1, {1, 0}, "t")};
    }, testing::ExactCompare());
  }
}

}  // namespace
}  // namespace zt
