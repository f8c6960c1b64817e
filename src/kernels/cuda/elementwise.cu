// CUDA kernels of the elementwise family (semantics in ir/ops/elementwise.cc, reference in
// kernels/cpu/elementwise.cc): add, mul (y repeats over x's leading dims), scale, reduce_sum_to,
// broadcast_to. All compute in f32 and round once to the storage type, like the CPU, so add, mul,
// scale and broadcast_to are bit-identical to it.
// reduce_sum_to is deterministic: each output column is summed in double by a fixed set of threads
// in a fixed order (row chunks of ir::ReduceSumToChunks, partials in the op's workspace, combined in
// chunk order by colsum.cuh); the CPU sums in double too, in row order, so results agree to one
// ulp of the storage type (to the bit except in rare double-rounding ties).
// Memory-bound loops use 128-bit loads/stores (vec.cuh) when the pointers are 16-byte aligned;
// tails and misaligned tensors take the scalar path.
#include <cuda_runtime.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "ir/ops/elementwise.h"
#include "kernels/cuda/colsum.cuh"
#include "kernels/cuda/registry.h"
#include "kernels/cuda/vec.cuh"
#include "kernels/kernel.h"

namespace zt {
namespace {

using dev::FromF32;
using dev::ToF32;
using dev::Vec;

constexpr int kThreads = 256;

struct AddOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct MulOp {
  __device__ float operator()(float a, float b) const { return a * b; }
};

// o[i] = op(x[i], y[i % m]) over n elements. vec: x and o are 16-byte aligned (vectors of kN);
// vec_y: additionally y is aligned and m % kN == 0, so y's elements of one vector are contiguous.
template <typename T, typename Op>
__global__ void binary_fwd_kernel(const T* x, const T* y, T* o, int64_t n, int64_t m, Op op, bool vec,
                                  bool vec_y) {
  constexpr int kN = Vec<T>::kN;
  int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  if (!vec) {
    for (int64_t i = tid; i < n; i += stride) o[i] = FromF32<T>(op(ToF32(x[i]), ToF32(y[i % m])));
    return;
  }
  int64_t nv = n / kN;
  for (int64_t v = tid; v < nv; v += stride) {
    int64_t i0 = v * kN;
    int64_t j = i0 % m;
    Vec<T> a = dev::LoadVec(x + i0), r;
    if (vec_y) {
      Vec<T> b = dev::LoadVec(y + j);
#pragma unroll
      for (int k = 0; k < kN; ++k) r.v[k] = FromF32<T>(op(ToF32(a.v[k]), ToF32(b.v[k])));
    } else {
#pragma unroll
      for (int k = 0; k < kN; ++k) {
        r.v[k] = FromF32<T>(op(ToF32(a.v[k]), ToF32(y[j])));
        if (++j == m) j = 0;
      }
    }
    dev::StoreVec(o + i0, r);
  }
  for (int64_t i = nv * kN + tid; i < n; i += stride) o[i] = FromF32<T>(op(ToF32(x[i]), ToF32(y[i % m])));
}

template <typename T>
__global__ void scale_fwd_kernel(const T* x, T* o, int64_t n, float s, bool vec) {
  constexpr int kN = Vec<T>::kN;
  int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t done = 0;
  if (vec) {
    int64_t nv = n / kN;
    for (int64_t v = tid; v < nv; v += stride) {
      Vec<T> a = dev::LoadVec(x + v * kN), r;
#pragma unroll
      for (int k = 0; k < kN; ++k) r.v[k] = FromF32<T>(s * ToF32(a.v[k]));
      dev::StoreVec(o + v * kN, r);
    }
    done = nv * kN;
  }
  for (int64_t i = done + tid; i < n; i += stride) o[i] = FromF32<T>(s * ToF32(x[i]));
}

// out[i] = x[i % m]; vec: x, o aligned and m % kN == 0.
template <typename T>
__global__ void broadcast_to_fwd_kernel(const T* x, T* o, int64_t n, int64_t m, bool vec) {
  constexpr int kN = Vec<T>::kN;
  int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t done = 0;
  if (vec) {
    int64_t nv = n / kN;
    for (int64_t v = tid; v < nv; v += stride) dev::StoreVec(o + v * kN, dev::LoadVec(x + (v * kN) % m));
    done = nv * kN;
  }
  for (int64_t i = done + tid; i < n; i += stride) o[i] = x[i % m];
}

// reduce_sum_to over m > 1 columns, pass 1 (pass 2 is dev::ColSum, colsum.cuh). The rows are
// split into `chunks` contiguous ranges (ir::ReduceSumToChunks: a function of rows and m only);
// block (tile, k) sums chunk k of a tile of kRedTx column groups of kV columns (kV = 8 bf16/f16 or
// 4 f32 columns per 16-byte vector load, 1 on the scalar path). Thread (tx, ty) sums rows
// r0 + ty, r0 + ty + kRedTy, ... of chunk [r0, r1) in double, in row order; the kRedTy lanes of a
// column are then added in lane order, giving the chunk's partial (written to part[k][j], or
// rounded straight into o[j] when there is one chunk). The order of every addition depends on
// (rows, m) only: not on kV, the alignment or the GPU, so the vector and scalar paths agree to the
// bit.
constexpr int kRedTx = 32;
constexpr int kRedTy = 8;
constexpr int kRedThreads = kRedTx * kRedTy;
constexpr int kRedMaxV = 8;  // the widest vector: 8 bf16/f16 columns

template <typename T, int kV>
struct alignas(kV * sizeof(T)) ColPack {
  T v[kV];
};

template <typename T, int kV>
__global__ void __launch_bounds__(kRedThreads)
    reduce_sum_to_part_kernel(const T* __restrict__ x, int64_t rows, int64_t m, int64_t chunks,
                              double* __restrict__ part, T* __restrict__ o) {
  static_assert(kV == 1 || kV * sizeof(T) == 16, "one element or one 16-byte vector per load");
  __shared__ double lane_sum[kRedTy][kRedTx * kRedMaxV];
  const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
  const int64_t k = blockIdx.y;
  const int64_t r0 = rows * k / chunks, r1 = rows * (k + 1) / chunks;
  const int64_t col0 = (static_cast<int64_t>(blockIdx.x) * kRedTx + tx) * kV;  // first column of the group
  double acc[kV];
#pragma unroll
  for (int e = 0; e < kV; ++e) acc[e] = 0.0;
  if (col0 < m) {  // kV > 1 only when m % kV == 0: the whole group is inside the row
    const T* p = x + col0;
    int64_t r = r0 + ty;
    // Four independent loads in flight per step; the additions stay in row order.
    for (; r + 3 * kRedTy < r1; r += 4 * kRedTy) {
      const ColPack<T, kV> v0 = *reinterpret_cast<const ColPack<T, kV>*>(p + r * m);
      const ColPack<T, kV> v1 = *reinterpret_cast<const ColPack<T, kV>*>(p + (r + kRedTy) * m);
      const ColPack<T, kV> v2 = *reinterpret_cast<const ColPack<T, kV>*>(p + (r + 2 * kRedTy) * m);
      const ColPack<T, kV> v3 = *reinterpret_cast<const ColPack<T, kV>*>(p + (r + 3 * kRedTy) * m);
#pragma unroll
      for (int e = 0; e < kV; ++e) {
        acc[e] += static_cast<double>(ToF32(v0.v[e]));
        acc[e] += static_cast<double>(ToF32(v1.v[e]));
        acc[e] += static_cast<double>(ToF32(v2.v[e]));
        acc[e] += static_cast<double>(ToF32(v3.v[e]));
      }
    }
    for (; r < r1; r += kRedTy) {
      const ColPack<T, kV> v0 = *reinterpret_cast<const ColPack<T, kV>*>(p + r * m);
#pragma unroll
      for (int e = 0; e < kV; ++e) acc[e] += static_cast<double>(ToF32(v0.v[e]));
    }
  }
#pragma unroll
  for (int e = 0; e < kV; ++e) lane_sum[ty][tx * kV + e] = acc[e];
  __syncthreads();
  // One thread per column of the tile adds its kRedTy lanes in order.
  constexpr int kTileCols = kRedTx * kV;
  const int64_t tile0 = static_cast<int64_t>(blockIdx.x) * kTileCols;
  for (int c = ty * kRedTx + tx; c < kTileCols; c += kRedThreads) {
    const int64_t j = tile0 + c;
    if (j >= m) break;
    double total = 0.0;
#pragma unroll
    for (int l = 0; l < kRedTy; ++l) total += lane_sum[l][c];
    if (part != nullptr) {
      part[k * m + j] = total;
    } else {
      o[j] = FromF32<T>(static_cast<float>(total));
    }
  }
}

// Pass 2's output: the column's total rounded once to T.
template <typename T>
struct StoreRounded {
  T* o;
  __device__ void operator()(int64_t j, double total) const { o[j] = FromF32<T>(static_cast<float>(total)); }
};

// reduce_sum_to down to one element (m == 1): one block; thread t sums elements t, t + B, ... in
// double, then a fixed shared-memory tree.
constexpr int kSumThreads = 1024;

template <typename T>
__global__ void reduce_sum_all_kernel(const T* x, T* o, int64_t n) {
  __shared__ double part[kSumThreads];
  double acc = 0.0;
  int64_t i = threadIdx.x;
  for (; i + 3 * kSumThreads < n; i += 4 * kSumThreads) {
    float v0 = ToF32(x[i]), v1 = ToF32(x[i + kSumThreads]);
    float v2 = ToF32(x[i + 2 * kSumThreads]), v3 = ToF32(x[i + 3 * kSumThreads]);
    acc += v0;
    acc += v1;
    acc += v2;
    acc += v3;
  }
  for (; i < n; i += kSumThreads) acc += ToF32(x[i]);
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int half = kSumThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) o[0] = FromF32<T>(static_cast<float>(part[0]));
}

void CheckLaunch() { ZT_CUDA_CHECK(cudaGetLastError()); }

template <typename Op>
void Binary(const KernelContext& c, Op op) {
  const Tensor& x = c.inputs[0];
  const Tensor& y = c.inputs[1];
  const Tensor& out = c.outputs[0];
  ZT_CHECK(x.dtype == y.dtype && x.dtype == out.dtype);
  ZT_CHECK(x.shape.EndsWith(y.shape) && out.shape == x.shape);
  int64_t n = x.numel(), m = y.numel();
  if (n == 0) return;
  cudaStream_t s = CudaStreamOf(c.stream);
  dev::DispatchFloat(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kN = Vec<T>::kN;
    const T* a = static_cast<const T*>(x.data);
    const T* b = static_cast<const T*>(y.data);
    T* o = static_cast<T*>(out.data);
    bool vec = dev::Aligned16(a, o);
    bool vec_y = vec && m % kN == 0 && dev::Aligned16(b);
    binary_fwd_kernel<T><<<dev::GridFor(vec ? n / kN + 1 : n, kThreads), kThreads, 0, s>>>(a, b, o, n, m, op, vec, vec_y);
    CheckLaunch();
  });
}

Status AddKernel(const KernelContext& c) {
  Binary(c, AddOp{});
  return OkStatus();
}

Status MulKernel(const KernelContext& c) {
  Binary(c, MulOp{});
  return OkStatus();
}

Status ScaleKernel(const KernelContext& c) {
  const Tensor& x = c.inputs[0];
  const Tensor& out = c.outputs[0];
  ZT_CHECK(x.dtype == out.dtype && x.shape == out.shape);
  int64_t n = x.numel();
  if (n == 0) return OkStatus();
  float alpha = static_cast<float>(c.attrs.GetFloat("alpha"));  // as the CPU: rounded to f32 first
  cudaStream_t s = CudaStreamOf(c.stream);
  dev::DispatchFloat(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* a = static_cast<const T*>(x.data);
    T* o = static_cast<T*>(out.data);
    bool vec = dev::Aligned16(a, o);
    scale_fwd_kernel<T><<<dev::GridFor(vec ? n / Vec<T>::kN + 1 : n, kThreads), kThreads, 0, s>>>(a, o, n, alpha, vec);
    CheckLaunch();
  });
  return OkStatus();
}

Status ReduceSumToKernel(const KernelContext& c) {
  const Tensor& x = c.inputs[0];
  const Tensor& out = c.outputs[0];
  ZT_CHECK(x.dtype == out.dtype && x.shape.EndsWith(out.shape));
  int64_t m = out.numel();
  if (m == 0) return OkStatus();
  int64_t rows = x.numel() / m;  // 0 when a leading dim is 0: the sums are 0, as on the CPU
  cudaStream_t s = CudaStreamOf(c.stream);
  dev::DispatchFloat(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kN = Vec<T>::kN;
    const T* a = static_cast<const T*>(x.data);
    T* o = static_cast<T*>(out.data);
    if (m == 1) {
      reduce_sum_all_kernel<T><<<1, kSumThreads, 0, s>>>(a, o, rows);
      CheckLaunch();
      return;
    }
    const int64_t chunks = ir::ReduceSumToChunks(rows, m);
    ZT_CHECK(chunks >= 1 && chunks <= 65535) << "reduce_sum_to: " << chunks << " chunks";
    double* part = nullptr;
    if (chunks > 1) {
      const size_t need = static_cast<size_t>(chunks) * static_cast<size_t>(m) * sizeof(double);
      ZT_CHECK_GE(c.workspace.nbytes(), need) << "reduce_sum_to: workspace too small";
      part = static_cast<double*>(c.workspace.data);
    }
    // Rows start 16-byte aligned when x does and m is a whole number of vectors.
    const bool vec = m % kN == 0 && dev::Aligned16(a);
    const int64_t groups = vec ? m / kN : m;
    const int64_t tiles = (groups + kRedTx - 1) / kRedTx;
    ZT_CHECK_LE(tiles, int64_t{0x7fffffff});
    const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(chunks));
    const dim3 block(kRedTx, kRedTy);
    if (vec) {
      reduce_sum_to_part_kernel<T, kN><<<grid, block, 0, s>>>(a, rows, m, chunks, part, o);
    } else {
      reduce_sum_to_part_kernel<T, 1><<<grid, block, 0, s>>>(a, rows, m, chunks, part, o);
    }
    CheckLaunch();
    if (part != nullptr) dev::ColSum(static_cast<const double*>(part), chunks, m, StoreRounded<T>{o}, s);
  });
  return OkStatus();
}

Status BroadcastToKernel(const KernelContext& c) {
  const Tensor& x = c.inputs[0];
  const Tensor& out = c.outputs[0];
  ZT_CHECK(x.dtype == out.dtype && out.shape.EndsWith(x.shape));
  int64_t m = x.numel(), n = out.numel();
  if (n == 0) return OkStatus();
  cudaStream_t s = CudaStreamOf(c.stream);
  dev::DispatchFloat(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kN = Vec<T>::kN;
    const T* a = static_cast<const T*>(x.data);
    T* o = static_cast<T*>(out.data);
    bool vec = dev::Aligned16(a, o) && m % kN == 0;
    broadcast_to_fwd_kernel<T><<<dev::GridFor(vec ? n / kN + 1 : n, kThreads), kThreads, 0, s>>>(a, o, n, m, vec);
    CheckLaunch();
  });
  return OkStatus();
}

}  // namespace

void RegisterElementwiseCudaKernels(KernelRegistry& r) {
  r.Register("add", DeviceKind::kCUDA, AddKernel);
  r.Register("mul", DeviceKind::kCUDA, MulKernel);
  r.Register("scale", DeviceKind::kCUDA, ScaleKernel);
  r.Register("reduce_sum_to", DeviceKind::kCUDA, ReduceSumToKernel);
  r.Register("broadcast_to", DeviceKind::kCUDA, BroadcastToKernel);
}

}  // namespace zt
