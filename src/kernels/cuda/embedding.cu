// CUDA kernels: embedding, embedding_bwd (semantics in ir/ops/embedding.cc, reference in
// kernels/cpu/embedding.cc).
// Forward: a gather of rows (16-byte vectors when the row size and pointers allow).
// Backward, deterministic without float atomics, in the op's workspace (same layout as the CPU:
// int64 offsets [V + 1], then int64 [N]):
//   1. keys[p] = id << 32 | p for every position p (bad ids get V << 32 | p, past every row);
//   2. a bitonic sort of the keys (tiles of kTile in shared memory, then global merge passes; the
//      keys are unique, so the result is the CPU's stable counting-sort order: by id, then p);
//   3. offsets[r] = the first key of row r (a binary search per row);
//   4. one block per vocabulary row sums its dout rows in position order in f32, exactly as the
//      CPU does (bit-identical), and writes zeros for rows no id hits.
// Ids outside [0, V) are never dereferenced: see embedding.cuh for how they are reported.
#include "kernels/cuda/embedding.cuh"

#include <cuda_runtime.h>

#include <climits>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "core/mem_category.h"
#include "ir/ops/embedding.h"
#include "kernels/cuda/index_errors.cuh"
#include "kernels/cuda/registry.h"
#include "kernels/cuda/vec.cuh"
#include "kernels/kernel.h"

namespace zt {
namespace {

using dev::FromF32;
using dev::ToF32;
using dev::Vec;

constexpr int kThreads = 256;
constexpr int kSortThreads = 1024;
constexpr int kTile = 4096;  // keys sorted in shared memory per block (32 KB)
constexpr unsigned long long kNoKey = ~0ull;

// The first bad id (by position) and how many were seen; see TakeEmbeddingIdErrors.
__device__ IndexErrorSlot g_bad_id = {kNoIndexError, 0};

__device__ void RecordBadId(int64_t pos, int64_t id) { RecordIndexError(&g_bad_id, pos, id); }

// out[p, :] = table[ids[p], :]; a chunk is kW elements (one 16-byte vector, or one element).
template <typename T, typename I, int kW>
__global__ void embedding_fwd_kernel(const I* __restrict__ ids, const T* __restrict__ table, T* __restrict__ out,
                                     int64_t n, int64_t v, int64_t ch) {
  const int64_t per_row = ch / kW, items = n * per_row;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < items;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = k / per_row, j = (k % per_row) * kW;
    const int64_t id = ids[p];
    T* dst = out + p * ch + j;
    if (id >= 0 && id < v) {
      const T* src = table + id * ch + j;
      if constexpr (kW == 1) {
        *dst = *src;
      } else {
        dev::StoreVec(dst, dev::LoadVec(src));
      }
    } else {
      const T nan = FromF32<T>(__int_as_float(0x7fffffff));
#pragma unroll
      for (int e = 0; e < kW; ++e) dst[e] = nan;
      if (j == 0) RecordBadId(p, id);
    }
  }
}

template <typename I>
__global__ void embedding_keys_kernel(const I* __restrict__ ids, int64_t n, int64_t v,
                                      unsigned long long* __restrict__ keys) {
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < n;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t id = ids[p];
    const bool ok = id >= 0 && id < v;
    if (!ok) RecordBadId(p, id);
    keys[p] = (static_cast<unsigned long long>(ok ? id : v) << 32) | static_cast<unsigned long long>(p);
  }
}

// Bitonic sort without directions: for each block size k, a "flip" pass compares i with
// i ^ (k - 1), then passes j = k/4 .. 1 compare i with i ^ j; every compare puts the smaller key
// at the lower index. Positions >= n hold virtual +inf keys, which such compares never move, so
// they are skipped (global) or filled with kNoKey (shared memory).
// The q-th compare of a pass (k and j powers of two): with off = q mod (distance), the pair's low
// index is 2q - off.
template <typename N>
__device__ __forceinline__ void PairOf(N q, N k, bool flip, N* i, N* l) {
  if (flip) {  // block size k: i in the lower half of its block, l its mirror in the upper half
    const N off = q & ((k >> 1) - 1);
    *i = 2 * q - off;
    *l = *i - off + k - 1 - off;
  } else {  // distance k
    const N off = q & (k - 1);
    *i = 2 * q - off;
    *l = *i + k;
  }
}

template <typename N>
__device__ __forceinline__ void CompareSwap(unsigned long long* a, N i, N l) {
  const unsigned long long x = a[i], y = a[l];
  if (x > y) {
    a[i] = y;
    a[l] = x;
  }
}

// Sorts each tile of `size` keys (size = min(kTile, padded n), a power of two) completely
// (full = true), or finishes a merge inside each tile with passes j = size/2 .. 1 (full = false).
__global__ void __launch_bounds__(kSortThreads) sort_tile_kernel(unsigned long long* keys, int64_t n, int size,
                                                                 bool full) {
  __shared__ unsigned long long a[kTile];
  const int64_t base = static_cast<int64_t>(blockIdx.x) * size;
  for (int i = threadIdx.x; i < size; i += blockDim.x) a[i] = base + i < n ? keys[base + i] : kNoKey;
  __syncthreads();
  for (int k = full ? 2 : size; k <= size; k <<= 1) {
    if (full) {
      for (int q = threadIdx.x; q < size / 2; q += blockDim.x) {
        int i, l;
        PairOf(q, k, true, &i, &l);
        CompareSwap(a, i, l);
      }
      __syncthreads();
    }
    for (int j = full ? k / 4 : size / 2; j > 0; j >>= 1) {
      for (int q = threadIdx.x; q < size / 2; q += blockDim.x) {
        int i, l;
        PairOf(q, j, false, &i, &l);
        CompareSwap(a, i, l);
      }
      __syncthreads();
    }
  }
  for (int i = threadIdx.x; i < size; i += blockDim.x) {
    if (base + i < n) keys[base + i] = a[i];
  }
}

// One global pass over `pairs` pairs: the flip of block size k, or the compare at distance k.
__global__ void sort_pass_kernel(unsigned long long* keys, int64_t n, int64_t pairs, int64_t k, bool flip) {
  for (int64_t q = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; q < pairs;
       q += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t i, l;
    PairOf(q, k, flip, &i, &l);
    if (l < n) CompareSwap(keys, i, l);
  }
}

// offsets[r] = the index of the first key of row r (r = v: the number of valid ids).
__global__ void embedding_offsets_kernel(const unsigned long long* __restrict__ keys, int64_t n, int64_t v,
                                         int64_t* __restrict__ offsets) {
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r <= v;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const unsigned long long target = static_cast<unsigned long long>(r) << 32;
    int64_t lo = 0, hi = n;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (keys[mid] < target) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    offsets[r] = lo;
  }
}

// dtable[r, :] = sum over row r's positions (in order) of dout[p, :], in f32 like the CPU.
template <typename T, int kW>
__global__ void embedding_bwd_kernel(const unsigned long long* __restrict__ keys, const int64_t* __restrict__ offsets,
                                     const T* __restrict__ dout, T* __restrict__ dtable, int64_t v, int64_t ch) {
  const int64_t per_row = ch / kW;
  for (int64_t r = blockIdx.x; r < v; r += gridDim.x) {
    const int64_t k0 = offsets[r], k1 = offsets[r + 1];
    for (int64_t c = threadIdx.x; c < per_row; c += blockDim.x) {
      float acc[kW];
#pragma unroll
      for (int e = 0; e < kW; ++e) acc[e] = 0.0f;
#pragma unroll 4
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t p = static_cast<int64_t>(keys[k] & 0xffffffffull);
        const T* src = dout + p * ch + c * kW;
        if constexpr (kW == 1) {
          acc[0] += ToF32(*src);
        } else {
          const Vec<T> a = dev::LoadVec(src);
#pragma unroll
          for (int e = 0; e < kW; ++e) acc[e] += ToF32(a.v[e]);
        }
      }
      T* dst = dtable + r * ch + c * kW;
      if constexpr (kW == 1) {
        *dst = FromF32<T>(acc[0]);
      } else {
        Vec<T> o;
#pragma unroll
        for (int e = 0; e < kW; ++e) o.v[e] = FromF32<T>(acc[e]);
        dev::StoreVec(dst, o);
      }
    }
  }
}

// Calls f(I{}) with I the index type of `ids` (i32 or i64).
template <typename F>
void DispatchIndex(const Tensor& ids, F&& f) {
  if (ids.dtype == DType::kI32) {
    f(int32_t{});
  } else {
    ZT_CHECK(ids.dtype == DType::kI64) << "embedding: ids must be i32 or i64, are " << DTypeName(ids.dtype);
    f(int64_t{});
  }
}

void CheckLaunch() { ZT_CUDA_CHECK(cudaGetLastError()); }

Status EmbeddingKernel(const KernelContext& c) {
  const Tensor& ids = c.inputs[0];
  const Tensor& table = c.inputs[1];
  const Tensor& out = c.outputs[0];
  ZT_CHECK(table.shape.rank() == 2 && IsFloating(table.dtype)) << "table " << table.shape;
  ZT_CHECK(out.dtype == table.dtype);
  const int64_t v = table.shape[0], ch = table.shape[1], n = ids.numel();
  ZT_CHECK_EQ(out.numel(), n * ch);
  if (n == 0 || ch == 0) return OkStatus();
  cudaStream_t s = CudaStreamOf(c.stream);
  DispatchIndex(ids, [&](auto itag) {
    using I = decltype(itag);
    const I* pid = static_cast<const I*>(ids.data);
    dev::DispatchFloat(table.dtype, [&](auto tag) {
      using T = decltype(tag);
      constexpr int kN = Vec<T>::kN;
      const T* src = static_cast<const T*>(table.data);
      T* dst = static_cast<T*>(out.data);
      if (ch % kN == 0 && dev::Aligned16(src, dst)) {
        embedding_fwd_kernel<T, I, kN><<<dev::GridFor(n * (ch / kN), kThreads), kThreads, 0, s>>>(pid, src, dst, n, v, ch);
      } else {
        embedding_fwd_kernel<T, I, 1><<<dev::GridFor(n * ch, kThreads), kThreads, 0, s>>>(pid, src, dst, n, v, ch);
      }
      CheckLaunch();
    });
  });
  return OkStatus();
}

// Sorts keys[0, n) ascending (see sort_tile_kernel and sort_pass_kernel).
void SortKeys(unsigned long long* keys, int64_t n, cudaStream_t s) {
  if (n <= 1) return;
  int64_t padded = 1;
  while (padded < n) padded <<= 1;
  const int tile = static_cast<int>(padded < kTile ? padded : kTile);
  const unsigned tiles = static_cast<unsigned>((n + tile - 1) / tile);
  sort_tile_kernel<<<tiles, kSortThreads, 0, s>>>(keys, n, tile, true);
  CheckLaunch();
  const int64_t pairs = padded / 2;
  for (int64_t k = 2 * static_cast<int64_t>(tile); k <= padded; k <<= 1) {
    sort_pass_kernel<<<dev::GridFor(pairs, kThreads), kThreads, 0, s>>>(keys, n, pairs, k, true);
    CheckLaunch();
    for (int64_t j = k / 4; j >= tile; j >>= 1) {
      sort_pass_kernel<<<dev::GridFor(pairs, kThreads), kThreads, 0, s>>>(keys, n, pairs, j, false);
      CheckLaunch();
    }
    sort_tile_kernel<<<tiles, kSortThreads, 0, s>>>(keys, n, tile, false);
    CheckLaunch();
  }
}

Status EmbeddingBwdKernel(const KernelContext& c) {
  const Tensor& ids = c.inputs[0];
  const Tensor& dout = c.inputs[1];
  const Tensor& dtable = c.outputs[0];
  ZT_CHECK(dtable.shape.rank() == 2 && dtable.dtype == dout.dtype) << "dtable " << dtable.shape;
  const int64_t v = dtable.shape[0], ch = dtable.shape[1], n = ids.numel();
  ZT_CHECK_EQ(dout.numel(), n * ch);
  ZT_CHECK_LT(n, int64_t{0xffffffff}) << "embedding_bwd: positions must fit 32 bits";
  ZT_CHECK_LT(v, int64_t{0x7fffffff}) << "embedding_bwd: num_embeddings must fit 31 bits";
  ZT_CHECK_GE(c.workspace.nbytes(), ir::EmbeddingBwdWorkspaceBytes(n, v));
  // The CPU's layout: offsets (V + 1) then the sorted positions (N), each aligned; here the second
  // array holds the sorted keys (id << 32 | position).
  auto* offsets = static_cast<int64_t*>(c.workspace.data);
  auto* keys = reinterpret_cast<unsigned long long*>(static_cast<char*>(c.workspace.data) +
                                                     AlignedBytes(static_cast<size_t>(v + 1) * sizeof(int64_t)));
  cudaStream_t s = CudaStreamOf(c.stream);
  if (n > 0) {
    DispatchIndex(ids, [&](auto itag) {
      using I = decltype(itag);
      embedding_keys_kernel<I><<<dev::GridFor(n, kThreads), kThreads, 0, s>>>(static_cast<const I*>(ids.data), n, v,
                                                                               keys);
      CheckLaunch();
    });
    SortKeys(keys, n, s);
  }
  if (v == 0 || ch == 0) return OkStatus();
  embedding_offsets_kernel<<<dev::GridFor(v + 1, kThreads), kThreads, 0, s>>>(keys, n, v, offsets);
  CheckLaunch();
  dev::DispatchFloat(dout.dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kN = Vec<T>::kN;
    const T* g = static_cast<const T*>(dout.data);
    T* dt = static_cast<T*>(dtable.data);
    const bool vec = ch % kN == 0 && dev::Aligned16(g, dt);
    const int64_t per_row = vec ? ch / kN : ch;
    const int threads = static_cast<int>(per_row >= kThreads ? kThreads : (per_row + 31) / 32 * 32);
    const unsigned blocks = static_cast<unsigned>(v < (1 << 20) ? v : (1 << 20));
    if (vec) {
      embedding_bwd_kernel<T, kN><<<blocks, threads, 0, s>>>(keys, offsets, g, dt, v, ch);
    } else {
      embedding_bwd_kernel<T, 1><<<blocks, threads, 0, s>>>(keys, offsets, g, dt, v, ch);
    }
    CheckLaunch();
  });
  return OkStatus();
}

}  // namespace

EmbeddingIdErrors TakeEmbeddingIdErrors(cudaStream_t stream) {
  const IndexErrors e = TakeIndexErrors(&g_bad_id, stream);
  return {e.count, e.where, e.value};
}

void RegisterEmbeddingCudaKernels(KernelRegistry& r) {
  r.Register("embedding", DeviceKind::kCUDA, EmbeddingKernel);
  r.Register("embedding_bwd", DeviceKind::kCUDA, EmbeddingBwdKernel);
}

}  // namespace zt
