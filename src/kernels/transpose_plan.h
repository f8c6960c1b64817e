// TransposePlan: a transpose reduced to its essentials, shared by the CPU and CUDA view kernels so
// both walk the same reduced problem. Size-1 dims are dropped and output dims that stay adjacent
// in the input are merged, so [B,T,H,D] -> [B,H,T,D] stays rank 4 but [A,B,C] -> [C,A,B] becomes
// a 2-D transpose [C, A*B].
// Invariant: the product of dims equals the element count, and walking dims row-major with
// src_stride visits every input element exactly once.
#pragma once

#include <cstdint>
#include <span>

#include "core/shape.h"
#include "ir/ops/views.h"

namespace zt {

struct TransposePlan {
  static constexpr int kMaxRank = ir::kMaxTransposeRank;
  int rank = 0;
  int64_t dims[kMaxRank];        // output dims, row-major
  int64_t src_stride[kMaxRank];  // input stride in elements of each output dim
};

// The plan of transposing `in` by `perm` (output dim j is input dim perm[j]). CHECKs the rank.
TransposePlan MakeTransposePlan(const Shape& in, std::span<const int64_t> perm);

}  // namespace zt
