// colsum.cuh: the second pass of the deterministic two-pass column reductions (reduce_sum_to's
// per-chunk partials, the norm backwards' per-block dw/db partials): sums a row-major
// [rows, m] matrix of f32 or f64 partials over its rows into m results.
// Invariant: the order of the additions depends on (rows, m) only, never on timing or the GPU:
// lane l of kColSumLanes sums rows l, l + kColSumLanes, ... in double, in row order; the lanes are
// then added in lane order (starting from +0.0), and out(j, total) receives column j's total.
// Launch: ColSum(part, rows, m, out, stream) — grid ceil(m / 32) blocks of 32 x 32 threads.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "core/check.h"

namespace zt::dev {

constexpr int kColSumCols = 32;   // columns per block (threadIdx.x)
constexpr int kColSumLanes = 32;  // row lanes per column (threadIdx.y)

template <typename P, typename Out>
__global__ void __launch_bounds__(kColSumCols * kColSumLanes)
    colsum_kernel(const P* __restrict__ part, int64_t rows, int64_t m, Out out) {
  __shared__ double lane_sum[kColSumLanes][kColSumCols + 1];
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kColSumCols + threadIdx.x;
  double acc = 0.0;
  if (j < m) {
    int64_t r = threadIdx.y;
    // Four independent loads in flight per step; the additions stay in row order.
    for (; r + 3 * kColSumLanes < rows; r += 4 * kColSumLanes) {
      const P v0 = part[r * m + j];
      const P v1 = part[(r + kColSumLanes) * m + j];
      const P v2 = part[(r + 2 * kColSumLanes) * m + j];
      const P v3 = part[(r + 3 * kColSumLanes) * m + j];
      acc += static_cast<double>(v0);
      acc += static_cast<double>(v1);
      acc += static_cast<double>(v2);
      acc += static_cast<double>(v3);
    }
    for (; r < rows; r += kColSumLanes) acc += static_cast<double>(part[r * m + j]);
  }
  lane_sum[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && j < m) {
    double total = 0.0;
    for (int l = 0; l < kColSumLanes; ++l) total += lane_sum[l][threadIdx.x];
    out(j, total);
  }
}

// Sums part [rows, m] (device memory) over its rows; rows may be 0 (every total is +0.0).
template <typename P, typename Out>
void ColSum(const P* part, int64_t rows, int64_t m, Out out, cudaStream_t s) {
  if (m <= 0) return;
  const int64_t blocks = (m + kColSumCols - 1) / kColSumCols;
  ZT_CHECK_LE(blocks, int64_t{0x7fffffff}) << "column sum: " << m << " columns";
  colsum_kernel<P, Out><<<static_cast<unsigned>(blocks), dim3(kColSumCols, kColSumLanes), 0, s>>>(part, rows, m, out);
  ZT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace zt::dev
