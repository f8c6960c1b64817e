// CUDA kernels of the elementwise family (semantics in ir/ops/elementwise.cc, reference in
// kernels/cpu/elementwise.cc): add, mul (y repeats over x's leading dims), scale, reduce_sum_to,
// broadcast_to. All compute in f32 and round once to the storage type, like the CPU, so add, mul,
// scale and broadcast_to are bit-identical to it.
// reduce_sum_to is deterministic and needs no workspace: each output column is summed in double,
// by a fixed set of threads in a fixed order, then combined in a fixed order (the CPU sums in
// double too, so results agree to the last bit except in rare double-rounding ties).
// Memory-bound loops use 128-bit loads/stores (vec.cuh) when the pointers are 16-byte aligned;
// tails and misaligned tensors take the scalar path.
#include <cuda_runtime.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
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

// reduce_sum_to, columns in tiles of 32 (threadIdx.x), rows split over blockDim.y row groups:
// group g sums rows g, g + Y, g + 2Y, ... in double; the Y partials of a column are then added in
// group order. The order depends only on (rows, m), never on timing.
constexpr int kColTile = 32;
constexpr int kMaxRowGroups = 32;

template <typename T>
__global__ void reduce_sum_to_cols_kernel(const T* x, T* o, int64_t rows, int64_t m) {
  __shared__ double part[kMaxRowGroups][kColTile + 1];
  int64_t j = static_cast<int64_t>(blockIdx.x) * kColTile + threadIdx.x;
  int groups = blockDim.y;
  double acc = 0.0;
  if (j < m) {
    int64_t r = threadIdx.y;
    // Four independent loads in flight per step; the additions stay in row order.
    for (; r + 3 * groups < rows; r += 4 * groups) {
      float v0 = ToF32(x[r * m + j]);
      float v1 = ToF32(x[(r + groups) * m + j]);
      float v2 = ToF32(x[(r + 2 * groups) * m + j]);
      float v3 = ToF32(x[(r + 3 * groups) * m + j]);
      acc += v0;
      acc += v1;
      acc += v2;
      acc += v3;
    }
    for (; r < rows; r += groups) acc += ToF32(x[r * m + j]);
  }
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && j < m) {
    double total = 0.0;
    for (int g = 0; g < groups; ++g) total += part[g][threadIdx.x];
    o[j] = FromF32<T>(static_cast<float>(total));
  }
}

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
    const T* a = static_cast<const T*>(x.data);
    T* o = static_cast<T*>(out.data);
    if (m == 1) {
      reduce_sum_all_kernel<T><<<1, kSumThreads, 0, s>>>(a, o, rows);
    } else {
      int groups = static_cast<int>(rows < kMaxRowGroups ? (rows < 1 ? 1 : rows) : kMaxRowGroups);
      dim3 block(kColTile, groups);
      int64_t tiles = (m + kColTile - 1) / kColTile;
      ZT_CHECK_LE(tiles, int64_t{0x7fffffff});
      reduce_sum_to_cols_kernel<T><<<static_cast<unsigned>(tiles), block, 0, s>>>(a, o, rows, m);
    }
    CheckLaunch();
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
