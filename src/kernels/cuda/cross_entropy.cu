// CUDA kernels: cross_entropy, cross_entropy_bwd (semantics in ir/ops/cross_entropy.cc, reference
// in kernels/cpu/cross_entropy.cc). Probabilities are never materialized:
//   forward: one block per row reads the logits once with an online softmax (per thread a running
//     max m and sum of exp(x - m), rescaled when m grows; then combined across the block in a
//     fixed order, the sums in double) -> lse (f32) and the row's loss term lse - x[target] (in
//     double, into the op's workspace, 0 when ignored); then one block sums the terms in a fixed
//     order and divides by the number of counted rows (0 rows: loss 0), like the CPU.
//   backward: dlogits = (exp(x - lse) - onehot) * dloss / count written straight from the logits
//     and the saved lse; zeros on ignored rows. Each block counts the non-ignored targets itself
//     (the op has no workspace), an exact integer.
// Rows are read with 16-byte vectors between a scalar head and tail (V need not be a multiple of
// 8: rows of bf16 logits [*, 50257] start at every alignment). exp is the accurate expf.
// classes (n <= V): only the first n columns of a row (row stride V) are classes. The forward and
// the backward's softmax read [0, n) only (the head/vector/tail split is over those n), and the
// backward writes exact zeros to [n, V) with scalar stores (the padding is short).
// Targets outside [0, n) that are not ignore_index are never dereferenced: see cross_entropy.cuh.
// Invariant: deterministic (fixed reduction orders, no float atomics).
#include "kernels/cuda/cross_entropy.cuh"

#include <cuda_runtime.h>

#include <climits>
#include <cmath>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "ir/ops/cross_entropy.h"
#include "kernels/cuda/index_errors.cuh"
#include "kernels/cuda/registry.h"
#include "kernels/cuda/vec.cuh"
#include "kernels/kernel.h"

namespace zt {
namespace {

using dev::FromF32;
using dev::ToF32;
using dev::Vec;

constexpr int kMaxThreads = 512;
constexpr int kLossThreads = 1024;
// The first bad target (by row) and how many were seen; see TakeCrossEntropyTargetErrors.
__device__ IndexErrorSlot g_bad_target = {kNoIndexError, 0};

__device__ void RecordBadTarget(int64_t row, int64_t t) { RecordIndexError(&g_bad_target, row, t); }

__device__ __forceinline__ float NaNf() { return __int_as_float(0x7fffffff); }

// Row r of V elements split into a scalar head (up to the first 16-byte boundary), kW-element
// vectors, and a scalar tail. kW == 1: no head, every element a "vector".
template <typename T, int kW>
struct RowSplit {
  int64_t head, vectors, tail_begin;
  __device__ RowSplit(const T* row, int64_t v) {
    if constexpr (kW == 1) {
      head = 0;
    } else {
      head = ((16 - (reinterpret_cast<uintptr_t>(row) & 15)) & 15) / sizeof(T);
      if (head > v) head = v;
    }
    vectors = (v - head) / kW;
    tail_begin = head + vectors * kW;
  }
};

template <typename T, int kW>
__device__ __forceinline__ void LoadF32(const T* p, float (&x)[kW]) {
  if constexpr (kW == 1) {
    x[0] = ToF32(*p);
  } else {
    const Vec<T> a = dev::LoadVec(p);
#pragma unroll
    for (int k = 0; k < kW; ++k) x[k] = ToF32(a.v[k]);
  }
}

// Online softmax state of one thread: max m and sum s of exp(x - m) over the values seen.
// (m = -inf means no finite value yet, and then s = 0.)
template <int kN>
__device__ __forceinline__ void OnlineAdd(const float (&x)[kN], float& m, float& s) {
  float mv = x[0];
#pragma unroll
  for (int k = 1; k < kN; ++k) mv = fmaxf(mv, x[k]);
  if (mv > m) {
    s *= expf(m - mv);
    m = mv;
  }
  if (m != -INFINITY) {
#pragma unroll
    for (int k = 0; k < kN; ++k) s += expf(x[k] - m);
  }
}

// (m1, s1) + (m2, s2); symmetric to the bit (both orders compute the same expression).
__device__ __forceinline__ void Combine(float& m1, double& s1, float m2, double s2) {
  if (m2 > m1) {
    const float tm = m1;
    const double ts = s1;
    m1 = m2;
    s1 = s2;
    m2 = tm;
    s2 = ts;
  }
  if (m2 == -INFINITY) {
    s1 = s1 + s2;  // s2 is 0 (no values), or both are empty
    return;
  }
  s1 = s1 + s2 * static_cast<double>(expf(m2 - m1));
}

// lse[r] and nll[r] for rows r of the grid-stride loop; blockDim.x a multiple of 32.
template <typename T, typename I, int kW>
__global__ void __launch_bounds__(kMaxThreads)
    cross_entropy_fwd_kernel(const T* __restrict__ logits, const I* __restrict__ targets, int64_t rows, int64_t v,
                             int64_t n, int64_t ignore_index, float* __restrict__ lse, double* __restrict__ nll) {
  __shared__ float sm[32];
  __shared__ double ss[32];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* row = logits + r * v;
    const RowSplit<T, kW> sp(row, n);  // the n classes; columns [n, v) are padding, never read
    float m = -INFINITY, s = 0.0f;
    for (int64_t j = tid; j < sp.head; j += blockDim.x) {
      float x[1] = {ToF32(row[j])};
      OnlineAdd(x, m, s);
    }
    const T* body = row + sp.head;
#pragma unroll 4
    for (int64_t q = tid; q < sp.vectors; q += blockDim.x) {
      float x[kW];
      LoadF32<T, kW>(body + q * kW, x);
      OnlineAdd(x, m, s);
    }
    for (int64_t j = sp.tail_begin + tid; j < n; j += blockDim.x) {
      float x[1] = {ToF32(row[j])};
      OnlineAdd(x, m, s);
    }
    double sd = s;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float om = __shfl_xor_sync(0xffffffffu, m, o);
      const double os = __shfl_xor_sync(0xffffffffu, sd, o);
      Combine(m, sd, om, os);
    }
    if (lane == 0) {
      sm[warp] = m;
      ss[warp] = sd;
    }
    __syncthreads();
    if (tid == 0) {
      m = sm[0];
      sd = ss[0];
      for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w) Combine(m, sd, sm[w], ss[w]);
      // All logits -inf: the CPU's sum of exp(-inf - -inf) is NaN; so is ours.
      const double log_s = m == -INFINITY ? static_cast<double>(NaNf()) : log(sd);
      lse[r] = static_cast<float>(static_cast<double>(m) + log_s);
      const int64_t t = targets[r];
      double term = 0.0;
      if (t != ignore_index) {
        if (t >= 0 && t < n) {
          // lse - x[t] = log(s) + (m - x[t]): no cancellation between two large numbers.
          term = log_s + (static_cast<double>(m) - static_cast<double>(ToF32(row[t])));
        } else {
          term = static_cast<double>(NaNf());
          RecordBadTarget(r, t);
        }
      }
      nll[r] = term;
    }
    __syncthreads();  // sm/ss are reused by the next row
  }
}

// loss = sum of nll in a fixed order / number of non-ignored targets (0 if none). One block.
template <typename I>
__global__ void __launch_bounds__(kLossThreads)
    cross_entropy_loss_kernel(const double* __restrict__ nll, const I* __restrict__ targets, int64_t rows,
                              int64_t ignore_index, float* __restrict__ loss) {
  __shared__ double ssum[32];
  __shared__ long long scount[32];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  double sum = 0.0;
  long long count = 0;
  for (int64_t r = tid; r < rows; r += blockDim.x) {
    sum += nll[r];
    count += static_cast<int64_t>(targets[r]) != ignore_index;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    sum += __shfl_down_sync(0xffffffffu, sum, o);
    count += __shfl_down_sync(0xffffffffu, count, o);
  }
  if (lane == 0) {
    ssum[warp] = sum;
    scount[warp] = count;
  }
  __syncthreads();
  if (tid == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w) {
      sum += ssum[w];
      count += scount[w];
    }
    loss[0] = count == 0 ? 0.0f : static_cast<float>(sum / static_cast<double>(count));
  }
}

// dlogits for rows of the grid-stride loop. vec: logits and dlogits share their alignment.
// Columns [n, v) get exact zeros (bad rows: NaN across the whole row).
template <typename T, typename I, int kW>
__global__ void __launch_bounds__(kMaxThreads)
    cross_entropy_bwd_kernel(const float* __restrict__ dloss, const T* __restrict__ logits,
                             const I* __restrict__ targets, const float* __restrict__ lse, int64_t rows, int64_t v,
                             int64_t n, int64_t ignore_index, T* __restrict__ dlogits) {
  __shared__ long long scount[32];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  // Every block counts the non-ignored targets (an exact integer: the same in every block).
  long long count = 0;
  for (int64_t r = tid; r < rows; r += blockDim.x) count += static_cast<int64_t>(targets[r]) != ignore_index;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) count += __shfl_xor_sync(0xffffffffu, count, o);
  if (lane == 0) scount[warp] = count;
  __syncthreads();
  count = 0;
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) count += scount[w];
  const float scale =
      count == 0 ? 0.0f : static_cast<float>(static_cast<double>(dloss[0]) / static_cast<double>(count));

  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* row = logits + r * v;
    T* out = dlogits + r * v;
    const int64_t t = targets[r];
    if (t == ignore_index || t < 0 || t >= n) {
      const RowSplit<T, kW> sp(row, v);  // the whole row, padding included
      const bool bad = t != ignore_index;
      if (bad && tid == 0) RecordBadTarget(r, t);
      const T fill = FromF32<T>(bad ? NaNf() : 0.0f);
      for (int64_t j = tid; j < sp.head; j += blockDim.x) out[j] = fill;
      for (int64_t q = tid; q < sp.vectors; q += blockDim.x) {
        T* o = out + sp.head + q * kW;
        if constexpr (kW == 1) {
          *o = fill;
        } else {
          Vec<T> f;
#pragma unroll
          for (int k = 0; k < kW; ++k) f.v[k] = fill;
          dev::StoreVec(o, f);
        }
      }
      for (int64_t j = sp.tail_begin + tid; j < v; j += blockDim.x) out[j] = fill;
      continue;
    }
    const RowSplit<T, kW> sp(row, n);  // the softmax part; [n, v) is zero-filled below
    const float lr = lse[r];
    for (int64_t j = tid; j < sp.head; j += blockDim.x) {
      const float p = expf(ToF32(row[j]) - lr);
      out[j] = FromF32<T>((p - (j == t ? 1.0f : 0.0f)) * scale);
    }
#pragma unroll 4
    for (int64_t q = tid; q < sp.vectors; q += blockDim.x) {
      const int64_t j0 = sp.head + q * kW;
      float x[kW];
      LoadF32<T, kW>(row + j0, x);
      if constexpr (kW == 1) {
        const float p = expf(x[0] - lr);
        out[j0] = FromF32<T>((p - (j0 == t ? 1.0f : 0.0f)) * scale);
      } else {
        Vec<T> o;
#pragma unroll
        for (int k = 0; k < kW; ++k) {
          const float p = expf(x[k] - lr);
          o.v[k] = FromF32<T>((p - (j0 + k == t ? 1.0f : 0.0f)) * scale);
        }
        dev::StoreVec(out + j0, o);
      }
    }
    for (int64_t j = sp.tail_begin + tid; j < n; j += blockDim.x) {
      const float p = expf(ToF32(row[j]) - lr);
      out[j] = FromF32<T>((p - (j == t ? 1.0f : 0.0f)) * scale);
    }
    for (int64_t j = n + tid; j < v; j += blockDim.x) out[j] = FromF32<T>(0.0f);  // padding columns
  }
}

template <typename F>
void DispatchIndex(const Tensor& targets, F&& f) {
  if (targets.dtype == DType::kI32) {
    f(int32_t{});
  } else {
    ZT_CHECK(targets.dtype == DType::kI64) << "cross_entropy: targets must be i32 or i64, are "
                                          << DTypeName(targets.dtype);
    f(int64_t{});
  }
}

// Threads per row: about 8 vectors each, a multiple of 32, at most kMaxThreads.
int ThreadsFor(int64_t v, int n_per_vec) {
  int64_t vecs = (v + n_per_vec - 1) / n_per_vec;
  int64_t t = (vecs + 7) / 8;
  t = (t + 31) / 32 * 32;
  return static_cast<int>(t < 32 ? 32 : (t > kMaxThreads ? kMaxThreads : t));
}

int MultiprocessorCount() {
  int dev = 0, sms = 0;
  ZT_CUDA_CHECK(cudaGetDevice(&dev));
  ZT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  return sms > 0 ? sms : 1;
}

Status CrossEntropyKernel(const KernelContext& c) {
  const Tensor& logits = c.inputs[0];
  const Tensor& targets = c.inputs[1];
  const Tensor& loss = c.outputs[0];
  const Tensor& lse = c.outputs[1];
  ZT_CHECK(logits.shape.rank() >= 1);
  const int64_t v = logits.shape[-1], rows = targets.numel();
  ZT_CHECK_EQ(logits.numel(), rows * v);
  ZT_CHECK(lse.dtype == DType::kF32 && lse.numel() == rows);
  ZT_CHECK(loss.dtype == DType::kF32 && loss.numel() == 1);
  ZT_CHECK_GE(c.workspace.nbytes(), ir::CrossEntropyWorkspaceBytes(rows));
  const int64_t n = ir::CrossEntropyClasses(c.attrs, v);  // valid columns; [n, v) is padding
  const int64_t ignore_index = c.attrs.GetInt("ignore_index");
  auto* nll = static_cast<double*>(c.workspace.data);  // (rows): each row's loss term, 0 if ignored
  cudaStream_t s = CudaStreamOf(c.stream);
  DispatchIndex(targets, [&](auto itag) {
    using I = decltype(itag);
    const I* pt = static_cast<const I*>(targets.data);
    if (rows > 0) {
      dev::DispatchFloat(logits.dtype, [&](auto tag) {
        using T = decltype(tag);
        constexpr int kN = Vec<T>::kN;
        const int threads = ThreadsFor(n, kN);
        const unsigned blocks = static_cast<unsigned>(rows < (1 << 30) ? rows : (1 << 30));
        cross_entropy_fwd_kernel<T, I, kN><<<blocks, threads, 0, s>>>(static_cast<const T*>(logits.data), pt, rows, v,
                                                                      n, ignore_index, lse.as<float>(), nll);
        ZT_CUDA_CHECK(cudaGetLastError());
      });
    }
    cross_entropy_loss_kernel<I><<<1, kLossThreads, 0, s>>>(nll, pt, rows, ignore_index, loss.as<float>());
    ZT_CUDA_CHECK(cudaGetLastError());
  });
  return OkStatus();
}

Status CrossEntropyBwdKernel(const KernelContext& c) {
  const Tensor& dloss = c.inputs[0];
  const Tensor& logits = c.inputs[1];
  const Tensor& targets = c.inputs[2];
  const Tensor& lse = c.inputs[3];
  const Tensor& dlogits = c.outputs[0];
  ZT_CHECK(logits.shape.rank() >= 1);
  const int64_t v = logits.shape[-1], rows = targets.numel();
  ZT_CHECK_EQ(logits.numel(), rows * v);
  ZT_CHECK(dlogits.dtype == logits.dtype && dlogits.shape == logits.shape);
  ZT_CHECK(lse.dtype == DType::kF32 && lse.numel() == rows);
  ZT_CHECK(dloss.dtype == DType::kF32 && dloss.numel() == 1);
  if (rows == 0 || v == 0) return OkStatus();
  const int64_t n = ir::CrossEntropyClasses(c.attrs, v);  // valid columns; [n, v) is padding
  const int64_t ignore_index = c.attrs.GetInt("ignore_index");
  cudaStream_t s = CudaStreamOf(c.stream);
  const int64_t max_blocks = 8 * static_cast<int64_t>(MultiprocessorCount());
  const unsigned blocks = static_cast<unsigned>(rows < max_blocks ? rows : max_blocks);
  DispatchIndex(targets, [&](auto itag) {
    using I = decltype(itag);
    const I* pt = static_cast<const I*>(targets.data);
    dev::DispatchFloat(logits.dtype, [&](auto tag) {
      using T = decltype(tag);
      constexpr int kN = Vec<T>::kN;
      const T* x = static_cast<const T*>(logits.data);
      T* dx = static_cast<T*>(dlogits.data);
      // Vectors need logits and dlogits rows to share their alignment.
      const bool vec = ((reinterpret_cast<uintptr_t>(x) ^ reinterpret_cast<uintptr_t>(dx)) & 15) == 0;
      if (vec) {
        cross_entropy_bwd_kernel<T, I, kN><<<blocks, ThreadsFor(v, kN), 0, s>>>(dloss.as<float>(), x, pt, lse.as<float>(),
                                                                              rows, v, n, ignore_index, dx);
      } else {
        cross_entropy_bwd_kernel<T, I, 1><<<blocks, ThreadsFor(v, 1), 0, s>>>(dloss.as<float>(), x, pt, lse.as<float>(),
                                                                             rows, v, n, ignore_index, dx);
      }
      ZT_CUDA_CHECK(cudaGetLastError());
    });
  });
  return OkStatus();
}

}  // namespace

CrossEntropyTargetErrors TakeCrossEntropyTargetErrors(cudaStream_t stream) {
  const IndexErrors e = TakeIndexErrors(&g_bad_target, stream);
  return {e.count, e.where, e.value};
}

void RegisterCrossEntropyCudaKernels(KernelRegistry& r) {
  r.Register("cross_entropy", DeviceKind::kCUDA, CrossEntropyKernel);
  r.Register("cross_entropy_bwd", DeviceKind::kCUDA, CrossEntropyBwdKernel);
}

}  // namespace zt
