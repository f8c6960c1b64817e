// CUDA views family against the CPU reference (GPU; skipped without one): reshape, transpose
// (contiguous-run and tiled cases, size-1 dims, ranks 2-5, every element size), split and concat
// (every axis, uneven pieces), forward and backward, f32/bf16/f16 and integer dtypes, odd sizes
// and the models' largest shapes (GPT-2 124M: B*T = 16384 x 768, qkv 2304; Llama-8B: T = 2048,
// 32 heads of 128). Views move bytes, so every result must be bit-identical: tolerance 0.
#include <gtest/gtest.h>

#include "ir/builder.h"
#include "ir/ops/views.h"
#include "support/device_compare.h"

namespace zt {
namespace {

using testing::CompareOptions;
using testing::CompareWithCpu;
using testing::DeviceInput;
using testing::Tolerance;

CompareOptions Exact(bool gradients = false) {
  CompareOptions o;
  o.tolerance = Tolerance{0, 0};
  o.gradients = gradients;
  return o;
}

DeviceInput In(const std::string& name, Shape s, DType t) {
  DeviceInput in{name, std::move(s), t};
  if (!IsFloating(t)) in.index_max = 200;
  return in;
}

struct TransposeCase {
  Shape shape;
  std::vector<int64_t> perm;
};

TEST(CudaViews, TransposeShapesPermsAndDTypes) {
  ZT_SKIP_WITHOUT_CUDA();
  const std::vector<TransposeCase> cases = {
      {Shape{33, 7}, {1, 0}},               // tiled 2-D
      {Shape{1, 1000}, {1, 0}},             // order unchanged (size-1 dim)
      {Shape{2, 9, 3, 5}, {0, 2, 1, 3}},    // contiguous runs ([B,T,H,D] -> [B,H,T,D])
      {Shape{4, 1, 6}, {2, 0, 1}},          // merged dims: 2-D transpose [6, 4]
      {Shape{3, 5, 7, 2}, {3, 1, 0, 2}},    // tiled with outer dims
      {Shape{2, 3, 4, 5, 6}, {4, 2, 0, 3, 1}},
      {Shape{7, 33, 65}, {0, 2, 1}},        // batched 2-D, sizes not multiples of the tile
      {Shape{1}, {0}},
  };
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16, DType::kI32, DType::kI64, DType::kU8}) {
    for (const auto& c : cases) {
      SCOPED_TRACE(std::string(DTypeName(t)) + " " + c.shape.ToString());
      CompareWithCpu({In("x", c.shape, t)}, [&](ir::Builder& b, const std::vector<ir::Value*>& in) {
        return std::vector<ir::Value*>{ir::ops::Transpose(b, in[0], c.perm, "y")};
      }, Exact());
    }
  }
}

TEST(CudaViews, TransposeLargestModelShapes) {
  ZT_SKIP_WITHOUT_CUDA();
  // GPT-2 124M attention layout [B, T, H, D] -> [B, H, T, D] (B*T = 16384).
  CompareWithCpu({In("x", Shape{16, 1024, 12, 64}, DType::kBF16)}, [](ir::Builder& b, const std::vector<ir::Value*>& in) {
    return std::vector<ir::Value*>{ir::ops::Transpose(b, in[0], {0, 2, 1, 3}, "y")};
  }, Exact());
  // Llama-8B: [1, 2048, 32, 128] -> [1, 32, 2048, 128], and a 4096 x 4096 weight transpose.
  CompareWithCpu({In("x", Shape{1, 2048, 32, 128}, DType::kBF16), In("w", Shape{4096, 4096}, DType::kBF16)},
                 [](ir::Builder& b, const std::vector<ir::Value*>& in) {
                   return std::vector<ir::Value*>{ir::ops::Transpose(b, in[0], {0, 2, 1, 3}, "y"),
                                                  ir::ops::Transpose(b, in[1], {1, 0}, "wt")};
                 },
                 Exact());
  // GPT-2 tied embedding [50257, 768] -> [768, 50257] in f32.
  CompareWithCpu({In("e", Shape{50257, 768}, DType::kF32)}, [](ir::Builder& b, const std::vector<ir::Value*>& in) {
    return std::vector<ir::Value*>{ir::ops::Transpose(b, in[0], {1, 0}, "et")};
  }, Exact());
}

TEST(CudaViews, SplitAndConcatEveryAxis) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16, DType::kI32, DType::kU8}) {
    SCOPED_TRACE(DTypeName(t));
    // [5, 7, 9]: split each axis into uneven pieces, concat them back in another order.
    for (int64_t axis : {0, 1, 2, -1}) {
      CompareWithCpu({In("x", Shape{5, 7, 9}, t)}, [&](ir::Builder& b, const std::vector<ir::Value*>& in) {
        int64_t n = in[0]->shape[static_cast<int>(axis < 0 ? axis + 3 : axis)];
        std::vector<int64_t> sizes = {1, n - 3, 2};
        auto parts = ir::ops::Split(b, in[0], axis, sizes, "p");
        ir::Value* back = ir::ops::Concat(b, {parts[2], parts[0], parts[1]}, axis, "c");
        return std::vector<ir::Value*>{parts[0], parts[1], parts[2], back};
      }, Exact());
    }
    // Odd widths: pieces of 1, 3 and 33 elements.
    CompareWithCpu({In("a", Shape{13, 1}, t), In("b", Shape{13, 3}, t), In("c", Shape{13, 33}, t)},
                   [&](ir::Builder& b, const std::vector<ir::Value*>& in) {
                     return std::vector<ir::Value*>{ir::ops::Concat(b, {in[0], in[1], in[2]}, 1, "y")};
                   },
                   Exact());
  }
}

TEST(CudaViews, SplitAndConcatLargestModelShapes) {
  ZT_SKIP_WITHOUT_CUDA();
  // GPT-2 124M fused qkv [16384, 2304] -> 3 x [16384, 768], and back.
  for (DType t : {DType::kBF16, DType::kF32}) {
    CompareWithCpu({In("qkv", Shape{16384, 2304}, t)}, [](ir::Builder& b, const std::vector<ir::Value*>& in) {
      auto p = ir::ops::Split(b, in[0], 1, {768, 768, 768}, "p");
      return std::vector<ir::Value*>{p[0], p[1], p[2], ir::ops::Concat(b, {p[1], p[2], p[0]}, 1, "c")};
    }, Exact());
  }
  // Llama-8B GQA: [2048, 6144] -> q [2048, 4096], k, v [2048, 1024].
  CompareWithCpu({In("qkv", Shape{2048, 6144}, DType::kBF16)}, [](ir::Builder& b, const std::vector<ir::Value*>& in) {
    auto p = ir::ops::Split(b, in[0], -1, {4096, 1024, 1024}, "p");
    return std::vector<ir::Value*>{p[0], p[1], p[2]};
  }, Exact());
}

// Backward: the gradients of views are views again (transpose by the inverse permutation, concat
// of split pieces, split of a concat); the harness's loss also runs cast/mul/reduce kernels.
TEST(CudaViews, GradientsOfTransposeSplitConcat) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(DTypeName(t));
    CompareWithCpu({In("x", Shape{3, 5, 7, 2}, t)}, [](ir::Builder& b, const std::vector<ir::Value*>& in) {
      return std::vector<ir::Value*>{ir::ops::Transpose(b, in[0], {3, 1, 0, 2}, "y")};
    }, Exact(true));
    CompareWithCpu({In("x", Shape{5, 7, 9}, t), In("z", Shape{5, 2, 9}, t)},
                   [](ir::Builder& b, const std::vector<ir::Value*>& in) {
                     auto p = ir::ops::Split(b, in[0], 1, {3, 4}, "p");
                     return std::vector<ir::Value*>{p[0], ir::ops::Concat(b, {p[1], in[1]}, 1, "c")};
                   },
                   Exact(true));
  }
}

TEST(CudaViews, ReshapeIsAViewForwardAndBackward) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16}) {
    CompareWithCpu({In("x", Shape{33, 7}, t)}, [](ir::Builder& b, const std::vector<ir::Value*>& in) {
      ir::Value* r = ir::ops::Reshape(b, in[0], Shape{7, 33}, "r");
      return std::vector<ir::Value*>{ir::ops::Transpose(b, r, {1, 0}, "y")};
    }, Exact(true));
  }
}

}  // namespace
}  // namespace zt
