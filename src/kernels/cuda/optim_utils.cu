// CUDA kernels of the optimizer utilities: sum_squares, accumulate, zero.
// sum_squares is deterministic and matches the CPU's structure: each input is cut into chunks of
// ir::kSumSquaresChunk elements, one block sums a chunk's squares in double (fixed per-thread
// order, fixed tree) into its slot of the workspace (one double per chunk, the op's workspace
// rule), and one block then adds the partials in a fixed order; no atomics. Up to kMaxSegments
// inputs share one launch (their pointers travel in the kernel's arguments).
// accumulate (acc f32 += x) and zero are elementwise and bit-identical to the CPU.
#include <cuda_runtime.h>

#include <algorithm>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "ir/ops/optim_utils.h"
#include "kernels/cuda/registry.h"
#include "kernels/cuda/vec.cuh"
#include "kernels/kernel.h"

namespace zt {
namespace {

constexpr int kThreads = 256;
constexpr int kFinalThreads = 1024;
constexpr int kMaxSegments = 32;
constexpr int64_t kChunk = ir::kSumSquaresChunk;

enum class FloatKind : int { kF32 = 0, kBF16 = 1, kF16 = 2 };

struct Segment {
  const void* data;
  int64_t n;
  int64_t first_chunk;  // within this launch
  FloatKind kind;
  bool aligned;  // 16-byte aligned: vector loads
};

struct SumSquaresArgs {
  int count = 0;
  int64_t chunks = 0;
  Segment seg[kMaxSegments];
};

// Sum over threads of a block (blockDim.x a multiple of 32, at most 1024); the result is valid
// in thread 0. The order of additions depends only on blockDim.
__device__ double BlockSum(double v) {
  __shared__ double warp_sums[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  int warps = blockDim.x >> 5;
  v = threadIdx.x < warps ? warp_sums[threadIdx.x] : 0.0;
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  __syncthreads();  // warp_sums may be reused by the caller's next BlockSum
  return v;
}

template <typename T>
__device__ double ChunkSquares(const T* p, int64_t begin, int64_t end, bool aligned) {
  double acc = 0;
  int64_t i = begin;
  if (aligned) {  // begin is a multiple of kChunk, so p + begin is aligned too
    constexpr int kN = dev::Vec<T>::kN;
    int64_t nv = (end - begin) / kN;
    for (int64_t k = threadIdx.x; k < nv; k += blockDim.x) {
      dev::Vec<T> v = dev::LoadVec(p + begin + k * kN);
#pragma unroll
      for (int e = 0; e < kN; ++e) {
        double x = dev::ToF32(v.v[e]);
        acc += x * x;
      }
    }
    i = begin + nv * kN;
  }
  for (int64_t k = i + threadIdx.x; k < end; k += blockDim.x) {
    double x = dev::ToF32(p[k]);
    acc += x * x;
  }
  return acc;
}

__global__ void sum_squares_partials_kernel(SumSquaresArgs a, double* __restrict__ partials) {
  for (int64_t c = blockIdx.x; c < a.chunks; c += gridDim.x) {
    int k = 0;
    while (k + 1 < a.count && a.seg[k + 1].first_chunk <= c) ++k;
    const Segment& s = a.seg[k];
    int64_t begin = (c - s.first_chunk) * kChunk;
    int64_t end = begin + kChunk < s.n ? begin + kChunk : s.n;
    double acc;
    switch (s.kind) {
      case FloatKind::kF32: acc = ChunkSquares(static_cast<const float*>(s.data), begin, end, s.aligned); break;
      case FloatKind::kBF16: acc = ChunkSquares(static_cast<const __nv_bfloat16*>(s.data), begin, end, s.aligned); break;
      default: acc = ChunkSquares(static_cast<const __half*>(s.data), begin, end, s.aligned); break;
    }
    acc = BlockSum(acc);
    if (threadIdx.x == 0) partials[c] = acc;
  }
}

__global__ void sum_squares_final_kernel(const double* __restrict__ partials, int64_t n, float* out) {
  double acc = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += partials[i];
  acc = BlockSum(acc);
  if (threadIdx.x == 0) out[0] = static_cast<float>(acc);
}

FloatKind KindOf(DType t) {
  switch (t) {
    case DType::kF32: return FloatKind::kF32;
    case DType::kBF16: return FloatKind::kBF16;
    case DType::kF16: return FloatKind::kF16;
    default: break;
  }
  ZT_CHECK(false) << "sum_squares: not a floating dtype: " << DTypeName(t);
  return FloatKind::kF32;
}

// out (f32 scalar) = sum of squares of every element of xs; partials: one double per chunk.
void sum_squares_fwd(std::span<const Tensor> xs, double* partials, int64_t partials_capacity, float* out,
                     cudaStream_t s) {
  int64_t base = 0;  // chunks of the inputs before the current launch
  SumSquaresArgs a;
  auto flush = [&] {
    if (a.chunks > 0) {
      unsigned blocks = static_cast<unsigned>(std::min<int64_t>(a.chunks, 65535 * 8));
      sum_squares_partials_kernel<<<blocks, kThreads, 0, s>>>(a, partials + base);
      ZT_CUDA_CHECK(cudaGetLastError());
    }
    base += a.chunks;
    a = SumSquaresArgs();
  };
  for (const Tensor& x : xs) {
    int64_t n = x.numel();
    int64_t chunks = (n + kChunk - 1) / kChunk;
    if (chunks == 0) continue;
    if (a.count == kMaxSegments) flush();
    a.seg[a.count++] = Segment{x.data, n, a.chunks, KindOf(x.dtype), dev::Aligned16(x.data)};
    a.chunks += chunks;
  }
  flush();
  ZT_CHECK_LE(base, partials_capacity) << "sum_squares: workspace too small";
  sum_squares_final_kernel<<<1, kFinalThreads, 0, s>>>(partials, base, out);
  ZT_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
__global__ void accumulate_kernel(float* __restrict__ acc, const T* __restrict__ x, int64_t n, bool vec) {
  int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t start = 0;
  if (vec) {
    constexpr int kN = dev::Vec<T>::kN;  // 4 (f32) or 8 (bf16, f16): a multiple of 4 floats
    int64_t nv = n / kN;
    for (int64_t i = tid; i < nv; i += step) {
      dev::Vec<T> xv = dev::LoadVec(x + i * kN);
      float4* ap = reinterpret_cast<float4*>(acc + i * kN);
#pragma unroll
      for (int k = 0; k < kN / 4; ++k) {
        float4 a = ap[k];
        a.x += dev::ToF32(xv.v[4 * k + 0]);
        a.y += dev::ToF32(xv.v[4 * k + 1]);
        a.z += dev::ToF32(xv.v[4 * k + 2]);
        a.w += dev::ToF32(xv.v[4 * k + 3]);
        ap[k] = a;
      }
    }
    start = nv * kN;
  }
  for (int64_t i = start + tid; i < n; i += step) acc[i] += dev::ToF32(x[i]);
}

void accumulate_fwd(const Tensor& acc, const Tensor& x, cudaStream_t s) {
  ZT_CHECK(acc.dtype == DType::kF32 && acc.shape == x.shape);
  int64_t n = acc.numel();
  if (n == 0) return;
  bool vec = dev::Aligned16(acc.data, x.data);
  dev::DispatchFloat(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kN = dev::Vec<T>::kN;
    accumulate_kernel<T><<<dev::GridFor(vec ? n / kN + 1 : n, kThreads), kThreads, 0, s>>>(
        static_cast<float*>(acc.data), static_cast<const T*>(x.data), n, vec);
  });
  ZT_CUDA_CHECK(cudaGetLastError());
}

Status SumSquaresKernel(const KernelContext& c) {
  int64_t capacity = c.workspace.numel() / static_cast<int64_t>(sizeof(double));
  sum_squares_fwd(c.inputs, static_cast<double*>(c.workspace.data), capacity, static_cast<float*>(c.outputs[0].data),
                  CudaStreamOf(c.stream));
  return OkStatus();
}
Status AccumulateKernel(const KernelContext& c) {
  ZT_CHECK(c.outputs[0].data == c.inputs[0].data) << "accumulate must run in place";
  accumulate_fwd(c.outputs[0], c.inputs[1], CudaStreamOf(c.stream));
  return OkStatus();
}
Status ZeroKernel(const KernelContext& c) {
  const Tensor& x = c.outputs[0];
  if (x.nbytes()) ZT_CUDA_CHECK(cudaMemsetAsync(x.data, 0, x.nbytes(), CudaStreamOf(c.stream)));
  return OkStatus();
}

}  // namespace

void RegisterOptimUtilsCudaKernels(KernelRegistry& r) {
  r.Register("sum_squares", DeviceKind::kCUDA, SumSquaresKernel);
  r.Register("accumulate", DeviceKind::kCUDA, AccumulateKernel);
  r.Register("zero", DeviceKind::kCUDA, ZeroKernel);
}

}  // namespace zt
