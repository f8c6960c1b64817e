// Row-normalization kernels shared by layernorm.cu (kCenter = true: subtract the mean, add a bias)
// and rmsnorm.cu (kCenter = false). Semantics are the CPU reference's (kernels/cpu/layernorm.cc,
// rmsnorm.cc): statistics f32, y from the saved f32 statistics, dx from the row means of g and
// g * xhat, dw (and db) summed over rows.
//
// Layout: a "team" of threads (a multiple of 32) owns one row at a time; a thread owns the same
// chunks of columns in every row (chunk = 16 bytes when C and the pointers allow, else one element)
// and keeps its row slice in registers, so x and dy are read once. Row sums are f32 per thread,
// then double across the team in a fixed order (butterfly within a warp, warps in index order).
// Several teams share a block so several rows are in flight.
// Backward: one warp per row wherever a row fits 32 threads at up to kMaxElemsBwd elements a
// thread (C up to 1024 for bf16/f16 and f32 on the vector path), so the row sums are shuffles
// only; wider rows take multi-warp teams (C up to 8192 on the vector path). Blocks of at most
// kBwdThreads threads, so a thread may hold dy, x and its dw/db partials in registers.
// Backward determinism: block k of B (B a function of rows, C and the path only, at most twice the
// CPU's chunk count so it fits the op's workspace) owns rows [rows*k/B, rows*(k+1)/B); within the
// block, team i takes every teams-th row of that range in order and accumulates dw/db for its
// columns in registers (f32); the teams add their partials in team order in shared memory and the
// block writes the sum to its f32 slot of the workspace; a last kernel (colsum.cuh) sums the
// slots of each column in a fixed order in double. No atomics: bit-identical run to run.
// Rows wider than 16384 elements in the forward (8192 in the backward) take simpler loop kernels
// with the same results contract (x and dy are then read more than once).
// Fused residual adds (add_layernorm / add_rmsnorm, and the backward's dresidual): every kernel
// above has a variant (kAdd, kRes) that the launchers pick when FwdArgs::residual or
// BwdArgs::dresidual is set. The forward reads a and b where it read x, forms the sum exactly as
// the `add` kernel does (f32 add, one rounding), writes it (16-byte stores on the vector path) and
// normalizes the ROUNDED sum with unchanged code; the loop kernel recomputes the same rounded sum
// on each pass over the row. The backward's dx store becomes round(f32(round(dx)) + f32(dres))
// with __fadd_rn (never contracted into an FMA), as `add` after the separate backward computes it.
// So each fused variant is bit-identical to the unfused kernel followed by the `add` kernel.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "core/dtype.h"
#include "kernels/cuda/colsum.cuh"
#include "kernels/cuda/vec.cuh"

namespace zt::norm_cuda {

using dev::FromF32;
using dev::ToF32;
using dev::Vec;

constexpr int kMaxThreads = 1024;
// Elements a thread keeps in registers: the forward holds x (under the 64-register cap of
// 1024-thread blocks); the backward holds dy and x in their storage type and the dw/db partials in
// f32, in blocks of at most kBwdThreads threads (up to 255 registers a thread).
constexpr int kMaxElemsFwd = 16;
constexpr int kMaxElemsBwd = 32;
constexpr int kBwdThreads = 256;        // the backward's block (and largest team)
constexpr int kCombCols = 2048;         // columns per step of the backward's in-block combination
constexpr int kLoopThreads = 1024;      // the wide-row fallback kernels
constexpr int kPartColumns = 256;       // columns per block of the fallback's partial-sum kernel

// ---------------------------------------------------------------------------------------------
// Device helpers.

// kW contiguous elements in their storage type (kW == 1, or one 16-byte vector): rows are kept in
// registers in this form (half the registers of f32 for bf16/f16) and widened where used.
template <typename T, int kW>
struct alignas(kW * sizeof(T)) Raw {
  static_assert(kW == 1 || kW == Vec<T>::kN, "a chunk is one element or one 16-byte vector");
  T v[kW];
};

// p must be aligned to the chunk's size (always true for kW == 1).
template <typename T, int kW>
__device__ __forceinline__ Raw<T, kW> LoadRaw(const T* p) {
  return *reinterpret_cast<const Raw<T, kW>*>(p);
}

template <typename T, int kW>
__device__ __forceinline__ void StoreRaw(T* p, const Raw<T, kW>& v) {
  *reinterpret_cast<Raw<T, kW>*>(p) = v;
}

// The residual sum of one chunk: add(a, b) element by element, exactly as the `add` kernel rounds
// it (elementwise.cu: f32 add, one rounding to T).
template <typename T, int kW>
__device__ __forceinline__ Raw<T, kW> AddRaw(const Raw<T, kW>& a, const Raw<T, kW>& b) {
  Raw<T, kW> s;
#pragma unroll
  for (int k = 0; k < kW; ++k) s.v[k] = FromF32<T>(ToF32(a.v[k]) + ToF32(b.v[k]));
  return s;
}

// The value the dx store writes with a residual gradient: add(round(dx), dres) as the `add` kernel
// computes it; __fadd_rn keeps the compiler from contracting the product that formed dx into it.
template <typename T>
__device__ __forceinline__ float AddResidual(float dx, T dres) {
  return __fadd_rn(ToF32(FromF32<T>(dx)), ToF32(dres));
}

template <typename T, int kW>
__device__ __forceinline__ void LoadChunk(const T* p, float (&v)[kW]) {
  Raw<T, kW> a = LoadRaw<T, kW>(p);
#pragma unroll
  for (int k = 0; k < kW; ++k) v[k] = ToF32(a.v[k]);
}

template <typename T, int kW>
__device__ __forceinline__ void StoreChunk(T* p, const float (&v)[kW]) {
  Raw<T, kW> a;
#pragma unroll
  for (int k = 0; k < kW; ++k) a.v[k] = FromF32<T>(v[k]);
  *reinterpret_cast<Raw<T, kW>*>(p) = a;
}

// The same value in every lane: the xor butterfly adds the same two operands in every lane at
// every step (a + b == b + a exactly), so all lanes agree to the bit.
__device__ __forceinline__ double WarpAllSum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ void NamedBarrier(int id, int threads) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(threads) : "memory");
}

// Consecutive `size` threads of the block (size a multiple of 32) working on one row.
struct Team {
  int size;   // threads in the team
  int index;  // the team within the block
  int rank;   // the thread within the team
  int count;  // teams in the block
};

__device__ __forceinline__ Team MakeTeam(int size) {
  Team t;
  t.size = size;
  t.index = static_cast<int>(threadIdx.x) / size;
  t.rank = static_cast<int>(threadIdx.x) % size;
  t.count = static_cast<int>(blockDim.x) / size;
  return t;
}

// Sums v[0..N) over the team; every thread of the team gets the same values (fixed order).
// red: shared double[2 * 32 * N] (two buffers used alternately, so one barrier per sum suffices:
// a warp can only reach the next use of a buffer after every warp of its team passed the barrier
// of the sum in between, which each does after reading the buffer).
template <int N>
__device__ __forceinline__ void TeamAllSum(const Team& t, double (&v)[N], double* red, int& phase) {
#pragma unroll
  for (int k = 0; k < N; ++k) v[k] = WarpAllSum(v[k]);
  if (t.size == 32) return;
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  double* buf = red + phase * 32 * N;
  if ((threadIdx.x & 31) == 0) {
#pragma unroll
    for (int k = 0; k < N; ++k) buf[warp * N + k] = v[k];
  }
  NamedBarrier(1 + t.index, t.size);  // ids 1..15; 0 is __syncthreads
  const int first = (t.index * t.size) >> 5, warps = t.size >> 5;
#pragma unroll
  for (int k = 0; k < N; ++k) v[k] = buf[first * N + k];
  for (int w = 1; w < warps; ++w) {
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] += buf[(first + w) * N + k];
  }
  phase ^= 1;
}

// ---------------------------------------------------------------------------------------------
// Forward: y = (x - mean) * rstd * w + b (kCenter) or x * rstd * w; mean (kCenter), rstd f32.

// kAdd: x is a, x2 is b, and the row normalized is sum = add(a, b), also written to `sum`.
template <typename T, int kW, int kVecs, bool kCenter, bool kAdd>
__global__ void __launch_bounds__(kMaxThreads)
    norm_fwd_kernel(const T* __restrict__ x, const T* __restrict__ x2, const T* __restrict__ w,
                    const T* __restrict__ b, double eps, T* __restrict__ sum, T* __restrict__ y,
                    float* __restrict__ mean, float* __restrict__ rstd, int64_t rows, int c, int team_size) {
  __shared__ double red[2 * 32];
  const Team t = MakeTeam(team_size);
  const int nch = c / kW;
  int phase = 0;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * t.count + t.index; r < rows;
       r += static_cast<int64_t>(gridDim.x) * t.count) {
    const T* xr = x + r * c;
    Raw<T, kW> v[kVecs];
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int ch = t.rank + i * t.size;
      if (ch < nch) {
        if constexpr (kAdd) {
          v[i] = AddRaw<T, kW>(LoadRaw<T, kW>(xr + ch * kW), LoadRaw<T, kW>(x2 + r * c + ch * kW));
          StoreRaw<T, kW>(sum + r * c + ch * kW, v[i]);
        } else {
          v[i] = LoadRaw<T, kW>(xr + ch * kW);
        }
#pragma unroll
        for (int k = 0; k < kW; ++k) {
          const float xv = ToF32(v[i].v[k]);
          s += kCenter ? xv : xv * xv;
        }
      }
    }
    float m = 0.0f;
    if constexpr (kCenter) {
      // Two passes over the registers: the mean, then the biased variance around it.
      double sum[1] = {s};
      TeamAllSum(t, sum, red, phase);
      m = static_cast<float>(sum[0] / c);
      s = 0.0f;
#pragma unroll
      for (int i = 0; i < kVecs; ++i) {
        if (t.rank + i * t.size < nch) {
#pragma unroll
          for (int k = 0; k < kW; ++k) {
            float d = ToF32(v[i].v[k]) - m;
            s += d * d;
          }
        }
      }
    }
    double sq[1] = {s};
    TeamAllSum(t, sq, red, phase);
    const float rs = static_cast<float>(1.0 / sqrt(sq[0] / c + eps));
    if (t.rank == 0) {
      if constexpr (kCenter) mean[r] = m;
      rstd[r] = rs;
    }
    T* yr = y + r * c;
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int ch = t.rank + i * t.size;
      if (ch < nch) {
        float wv[kW], o[kW];
        LoadChunk<T, kW>(w + ch * kW, wv);
        if constexpr (kCenter) {
          float bv[kW];
          LoadChunk<T, kW>(b + ch * kW, bv);
#pragma unroll
          for (int k = 0; k < kW; ++k) o[k] = (ToF32(v[i].v[k]) - m) * rs * wv[k] + bv[k];
        } else {
#pragma unroll
          for (int k = 0; k < kW; ++k) o[k] = ToF32(v[i].v[k]) * rs * wv[k];
        }
        StoreChunk<T, kW>(yr + ch * kW, o);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward: dx per row; dw (and db) partials per block into part[block][2 or 1][C] (f32).

// Two blocks per SM (<= 128 registers) where a thread's vectors of a row total at most 48 bytes
// (bf16/f16 rows up to 768 in one warp: GPT-2's); other instances may use up to 255 registers.
// kRes: dx = add(dx, dres) (see AddResidual).
template <typename T, int kW, int kVecs, bool kCenter, bool kRes>
__global__ void __launch_bounds__(kBwdThreads, kW > 1 && kVecs * kW * sizeof(T) <= 48 ? 2 : 1)
    norm_bwd_kernel(const T* __restrict__ dy, const T* __restrict__ x, const T* __restrict__ w,
                    const float* __restrict__ mean, const float* __restrict__ rstd, const T* __restrict__ dres,
                    T* __restrict__ dx, float* __restrict__ part, int64_t rows, int c, int team_size) {
  __shared__ double red[2 * 32 * 2];
  const Team t = MakeTeam(team_size);
  const int nch = c / kW;
  const int64_t r0 = rows * blockIdx.x / gridDim.x, r1 = rows * (blockIdx.x + 1) / gridDim.x;
  float adw[kVecs][kW], adb[kVecs][kW];
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
#pragma unroll
    for (int k = 0; k < kW; ++k) adw[i][k] = adb[i][k] = 0.0f;
  }
  int phase = 0;
  for (int64_t r = r0 + t.index; r < r1; r += t.count) {
    const T* dyr = dy + r * c;
    const T* xr = x + r * c;
    const float m = kCenter ? mean[r] : 0.0f;
    const float rs = rstd[r];
    Raw<T, kW> rd[kVecs], rx[kVecs];  // this thread's slices of dy and x
    float sg = 0.0f, sgx = 0.0f;
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int ch = t.rank + i * t.size;
      if (ch < nch) {
        rd[i] = LoadRaw<T, kW>(dyr + ch * kW);
        rx[i] = LoadRaw<T, kW>(xr + ch * kW);
        float wv[kW];
        LoadChunk<T, kW>(w + ch * kW, wv);
#pragma unroll
        for (int k = 0; k < kW; ++k) {
          const float xh = (ToF32(rx[i].v[k]) - m) * rs;
          const float g = ToF32(rd[i].v[k]) * wv[k];
          sg += g;
          sgx += g * xh;
        }
      }
    }
    double sums[2] = {sg, sgx};
    TeamAllSum(t, sums, red, phase);
    const float mg = static_cast<float>(sums[0] / c), mgx = static_cast<float>(sums[1] / c);
    T* dxr = dx + r * c;
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int ch = t.rank + i * t.size;
      if (ch < nch) {
        float wv[kW], o[kW];
        LoadChunk<T, kW>(w + ch * kW, wv);  // again (L1), rather than holding g in registers
#pragma unroll
        for (int k = 0; k < kW; ++k) {
          const float d = ToF32(rd[i].v[k]);
          const float xh = (ToF32(rx[i].v[k]) - m) * rs;
          const float g = d * wv[k];
          o[k] = kCenter ? rs * (g - mg - xh * mgx) : rs * (g - xh * mgx);
          adw[i][k] += d * xh;
          if constexpr (kCenter) adb[i][k] += d;
        }
        if constexpr (kRes) {
          const Raw<T, kW> rr = LoadRaw<T, kW>(dres + r * c + ch * kW);
#pragma unroll
          for (int k = 0; k < kW; ++k) o[k] = AddResidual(o[k], rr.v[k]);
        }
        StoreChunk<T, kW>(dxr + ch * kW, o);
      }
    }
  }
  // The teams add their partials in team order into shared memory, kCombCols columns at a time;
  // then the block writes the window to its slot, coalesced. Every column has exactly one owner in
  // every team (team size * kVecs >= chunks), so team 0 initializes the whole window.
  __shared__ float comb[kCenter ? 2 * kCombCols : kCombCols];
  float* slot_w = part + static_cast<int64_t>(blockIdx.x) * (kCenter ? 2 : 1) * c;
  float* slot_b = slot_w + c;
  for (int base = 0; base < c; base += kCombCols) {
    const int hi = min(c, base + kCombCols);
    for (int k = 0; k < t.count; ++k) {
      if (t.index == k) {
#pragma unroll
        for (int i = 0; i < kVecs; ++i) {
          const int ch = t.rank + i * t.size;
          if (ch < nch) {
#pragma unroll
            for (int e = 0; e < kW; ++e) {
              const int j = ch * kW + e;
              if (j >= base && j < hi) {
                float* cw = comb + (j - base);
                *cw = k == 0 ? adw[i][e] : *cw + adw[i][e];
                if constexpr (kCenter) cw[kCombCols] = k == 0 ? adb[i][e] : cw[kCombCols] + adb[i][e];
              }
            }
          }
        }
      }
      __syncthreads();
    }
    for (int j = base + static_cast<int>(threadIdx.x); j < hi; j += static_cast<int>(blockDim.x)) {
      slot_w[j] = comb[j - base];
      if constexpr (kCenter) slot_b[j] = comb[kCombCols + j - base];
    }
    __syncthreads();  // the window is read before the next one overwrites it
  }
}

// The last pass: dw[j] (and db[j]) = the fixed-order sum (dev::ColSum) of the slots' column j
// (columns C..2C-1 of a slot are db's).
template <typename T, bool kCenter>
struct StoreDwDb {
  T* dw;
  T* db;
  int c;
  __device__ void operator()(int64_t j, double total) const {
    const T v = FromF32<T>(static_cast<float>(total));
    if (!kCenter || j < c) {
      dw[j] = v;
    } else {
      db[j - c] = v;
    }
  }
};

template <typename T, bool kCenter>
void LaunchBwdFinal(const float* part, int64_t slots, int c, void* dw, void* db, cudaStream_t s) {
  dev::ColSum(part, slots, static_cast<int64_t>(kCenter ? 2 : 1) * c,
              StoreDwDb<T, kCenter>{static_cast<T*>(dw), static_cast<T*>(db), c}, s);
}

// ---------------------------------------------------------------------------------------------
// Wide rows (beyond kMaxThreads * kMaxElemsFwd or kBwdThreads * kMaxElemsBwd elements): one block
// per row, element loops over global memory; dw/db partials by a column kernel into the same slots.

// Element j of the row to normalize: x[j], or with kAdd the rounded sum add(x[j], x2[j]).
template <typename T, bool kAdd>
__device__ __forceinline__ T RowElem(const T* xr, const T* x2r, int j) {
  if constexpr (kAdd) {
    return FromF32<T>(ToF32(xr[j]) + ToF32(x2r[j]));
  } else {
    return xr[j];
  }
}

template <typename T, bool kCenter, bool kAdd>
__global__ void __launch_bounds__(kLoopThreads)
    norm_fwd_loop_kernel(const T* __restrict__ x, const T* __restrict__ x2, const T* __restrict__ w,
                         const T* __restrict__ b, double eps, T* __restrict__ sum, T* __restrict__ y,
                         float* __restrict__ mean, float* __restrict__ rstd, int64_t rows, int c) {
  __shared__ double red[2 * 32];
  const Team t = MakeTeam(blockDim.x);
  int phase = 0;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * c;
    const T* x2r = kAdd ? x2 + r * c : nullptr;
    float m = 0.0f;
    if constexpr (kCenter) {
      double s[1] = {0.0};
      for (int j = t.rank; j < c; j += t.size) s[0] += ToF32(RowElem<T, kAdd>(xr, x2r, j));
      TeamAllSum(t, s, red, phase);
      m = static_cast<float>(s[0] / c);
    }
    double sq[1] = {0.0};
    for (int j = t.rank; j < c; j += t.size) {
      float d = ToF32(RowElem<T, kAdd>(xr, x2r, j)) - m;
      sq[0] += d * d;
    }
    TeamAllSum(t, sq, red, phase);
    const float rs = static_cast<float>(1.0 / sqrt(sq[0] / c + eps));
    if (t.rank == 0) {
      if constexpr (kCenter) mean[r] = m;
      rstd[r] = rs;
    }
    T* yr = y + r * c;
    for (int j = t.rank; j < c; j += t.size) {
      const T xs = RowElem<T, kAdd>(xr, x2r, j);
      if constexpr (kAdd) sum[r * c + j] = xs;
      float v = ToF32(xs);
      yr[j] = kCenter ? FromF32<T>((v - m) * rs * ToF32(w[j]) + ToF32(b[j])) : FromF32<T>(v * rs * ToF32(w[j]));
    }
  }
}

template <typename T, bool kCenter, bool kRes>
__global__ void __launch_bounds__(kLoopThreads)
    norm_bwd_dx_loop_kernel(const T* __restrict__ dy, const T* __restrict__ x, const T* __restrict__ w,
                            const float* __restrict__ mean, const float* __restrict__ rstd,
                            const T* __restrict__ dres, T* __restrict__ dx, int64_t rows, int c) {
  __shared__ double red[2 * 32 * 2];
  const Team t = MakeTeam(blockDim.x);
  int phase = 0;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* dyr = dy + r * c;
    const T* xr = x + r * c;
    const float m = kCenter ? mean[r] : 0.0f;
    const float rs = rstd[r];
    double sums[2] = {0.0, 0.0};
    for (int j = t.rank; j < c; j += t.size) {
      float xh = (ToF32(xr[j]) - m) * rs;
      float g = ToF32(dyr[j]) * ToF32(w[j]);
      sums[0] += g;
      sums[1] += static_cast<double>(g) * xh;
    }
    TeamAllSum(t, sums, red, phase);
    const float mg = static_cast<float>(sums[0] / c), mgx = static_cast<float>(sums[1] / c);
    T* dxr = dx + r * c;
    for (int j = t.rank; j < c; j += t.size) {
      float xh = (ToF32(xr[j]) - m) * rs;
      float g = ToF32(dyr[j]) * ToF32(w[j]);
      float o = kCenter ? rs * (g - mg - xh * mgx) : rs * (g - xh * mgx);
      if constexpr (kRes) o = AddResidual(o, dres[r * c + j]);
      dxr[j] = FromF32<T>(o);
    }
  }
}

// grid (column tiles, blocks): slot blockIdx.y sums its row range in row order.
template <typename T, bool kCenter>
__global__ void norm_bwd_part_loop_kernel(const T* __restrict__ dy, const T* __restrict__ x,
                                          const float* __restrict__ mean, const float* __restrict__ rstd,
                                          float* __restrict__ part, int64_t rows, int c) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= c) return;
  const int64_t blocks = gridDim.y, k = blockIdx.y;
  const int64_t r0 = rows * k / blocks, r1 = rows * (k + 1) / blocks;
  float aw = 0.0f, ab = 0.0f;
  for (int64_t r = r0; r < r1; ++r) {
    const float d = ToF32(dy[r * c + j]);
    const float m = kCenter ? mean[r] : 0.0f;
    aw += d * ((ToF32(x[r * c + j]) - m) * rstd[r]);
    ab += d;
  }
  float* slot = part + k * (kCenter ? 2 : 1) * c;
  slot[j] = aw;
  if constexpr (kCenter) slot[c + j] = ab;
}

// ---------------------------------------------------------------------------------------------
// Host side.

struct FwdArgs {
  const void* x;
  const void* w;
  const void* b;  // null for rmsnorm
  double eps;
  void* y;
  float* mean;  // null for rmsnorm
  float* rstd;
  int64_t rows;
  int c;
  // add_layernorm / add_rmsnorm: x is a, `residual` is b, and sum = add(a, b) is written here.
  const void* residual = nullptr;
  void* sum = nullptr;
};

struct BwdArgs {
  const void* dy;
  const void* x;
  const void* w;
  const float* mean;  // null for rmsnorm
  const float* rstd;
  void* dx;
  void* dw;
  void* db;  // null for rmsnorm
  int64_t rows;
  int c;
  void* workspace;
  size_t workspace_bytes;
  int64_t cpu_chunks;  // the op's chunk count: the workspace holds 2 * cpu_chunks f32 slots
  const void* dresidual = nullptr;  // set: dx = add(dx, dresidual)
};

inline int RoundUp32(int64_t n) { return static_cast<int>((n + 31) / 32 * 32); }

// Threads per row for nch chunks at `vecs` chunks per thread.
inline int TeamSize(int nch, int vecs) { return std::max(32, RoundUp32((nch + vecs - 1) / vecs)); }

// Teams per block: up to `threads` threads; 15 named barriers bound multi-warp teams.
inline int TeamsPerBlock(int team, int threads) {
  int teams = std::max(1, threads / team);
  return team == 32 ? teams : std::min(teams, 15);
}

// Smallest chunks-per-thread (a power of two, at most kMaxElems / kW) that fits a row in one
// block; 0 when none does (wide rows).
template <int kW, int kMaxElems>
int ChooseVecs(int nch) {
  for (int v = 1; v * kW <= kMaxElems; v *= 2) {
    if ((nch + v - 1) / v <= kMaxThreads) return v;
  }
  return 0;
}

// The backward's chunks-per-thread choices for chunk width kW (each one is a kernel instance):
// 1, 2, 3, 4, 6, 8 (16, 32 on the scalar path) within kMaxElemsBwd elements a thread.
template <int kW>
constexpr bool BwdVecsAllowed(int v) {
  const bool listed = kW == 1 ? (v == 1 || v == 2 || v == 4 || v == 8 || v == 16 || v == 32)
                              : (v == 1 || v == 2 || v == 3 || v == 4 || v == 6 || v == 8);
  return listed && v * kW <= kMaxElemsBwd;
}

// Chunks per thread of the backward: the smallest allowed count that fits a row in one warp (no
// barriers: the row sums are warp shuffles); else the largest allowed count (the smallest team),
// if the team fits one kBwdThreads block; 0 when none does (wide rows: the loop kernels).
template <int kW>
int ChooseBwdVecs(int nch) {
  int largest = 0;
  for (int v = 1; v <= 32; ++v) {
    if (!BwdVecsAllowed<kW>(v)) continue;
    if ((nch + v - 1) / v <= 32) return v;
    largest = v;
  }
  return largest > 0 && TeamSize(nch, largest) <= kBwdThreads ? largest : 0;
}

// Slots (blocks) of the fused backward: a function of rows, C and the path (vector or scalar),
// at most the 2 * cpu_chunks f32 slots the op's workspace holds.
inline int BwdBlocks(int64_t rows, int teams, int64_t cpu_chunks) {
  int64_t want = (rows + 4 * teams - 1) / (4 * teams);  // about 4 rows per team
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(want, 2 * cpu_chunks)));
}

template <typename T, int kW, int kVecs, bool kCenter, bool kAdd>
void LaunchFwd(const FwdArgs& a, cudaStream_t s) {
  const int nch = a.c / kW;
  const int team = TeamSize(nch, kVecs);
  const int teams = TeamsPerBlock(team, 512);
  const int64_t blocks = std::min<int64_t>((a.rows + teams - 1) / teams, 1 << 20);
  norm_fwd_kernel<T, kW, kVecs, kCenter, kAdd><<<static_cast<unsigned>(blocks), team * teams, 0, s>>>(
      static_cast<const T*>(a.x), static_cast<const T*>(a.residual), static_cast<const T*>(a.w),
      static_cast<const T*>(a.b), a.eps, static_cast<T*>(a.sum), static_cast<T*>(a.y), a.mean, a.rstd, a.rows, a.c,
      team);
  ZT_CUDA_CHECK(cudaGetLastError());
}

template <typename T, int kW, int kVecs, bool kCenter, bool kRes>
void LaunchBwd(const BwdArgs& a, float* part, cudaStream_t s) {
  const int nch = a.c / kW;
  const int team = TeamSize(nch, kVecs);
  ZT_CHECK_LE(team, kBwdThreads) << "norm backward: row of " << a.c << " too wide for the register kernel";
  const int teams = TeamsPerBlock(team, kBwdThreads);
  const int blocks = BwdBlocks(a.rows, teams, a.cpu_chunks);
  const size_t need = static_cast<size_t>(blocks) * (kCenter ? 2 : 1) * a.c * sizeof(float);
  ZT_CHECK_GE(a.workspace_bytes, need) << "norm backward: workspace too small";
  norm_bwd_kernel<T, kW, kVecs, kCenter, kRes><<<blocks, team * teams, 0, s>>>(
      static_cast<const T*>(a.dy), static_cast<const T*>(a.x), static_cast<const T*>(a.w), a.mean, a.rstd,
      static_cast<const T*>(a.dresidual), static_cast<T*>(a.dx), part, a.rows, a.c, team);
  ZT_CUDA_CHECK(cudaGetLastError());
  LaunchBwdFinal<T, kCenter>(part, blocks, a.c, a.dw, a.db, s);
}

// Calls launch(std::integral_constant<int, kVecs>{}) for the chosen kVecs of chunk width kW;
// false when the row is too wide for the register kernels.
template <int kW, int kMaxElems, typename F>
bool WithVecs(int nch, F&& launch) {
  switch (ChooseVecs<kW, kMaxElems>(nch)) {
    case 1: launch(std::integral_constant<int, 1>{}); return true;
    case 2: if constexpr (2 * kW <= kMaxElems) { launch(std::integral_constant<int, 2>{}); return true; } break;
    case 4: if constexpr (4 * kW <= kMaxElems) { launch(std::integral_constant<int, 4>{}); return true; } break;
    case 8: if constexpr (8 * kW <= kMaxElems) { launch(std::integral_constant<int, 8>{}); return true; } break;
    case 16: if constexpr (16 * kW <= kMaxElems) { launch(std::integral_constant<int, 16>{}); return true; } break;
    default: break;
  }
  return false;
}

// The backward's counterpart of WithVecs (ChooseBwdVecs).
template <int kW, typename F>
bool WithBwdVecs(int nch, F&& launch) {
  switch (ChooseBwdVecs<kW>(nch)) {
    case 1: if constexpr (BwdVecsAllowed<kW>(1)) { launch(std::integral_constant<int, 1>{}); return true; } break;
    case 2: if constexpr (BwdVecsAllowed<kW>(2)) { launch(std::integral_constant<int, 2>{}); return true; } break;
    case 3: if constexpr (BwdVecsAllowed<kW>(3)) { launch(std::integral_constant<int, 3>{}); return true; } break;
    case 4: if constexpr (BwdVecsAllowed<kW>(4)) { launch(std::integral_constant<int, 4>{}); return true; } break;
    case 6: if constexpr (BwdVecsAllowed<kW>(6)) { launch(std::integral_constant<int, 6>{}); return true; } break;
    case 8: if constexpr (BwdVecsAllowed<kW>(8)) { launch(std::integral_constant<int, 8>{}); return true; } break;
    case 16: if constexpr (BwdVecsAllowed<kW>(16)) { launch(std::integral_constant<int, 16>{}); return true; } break;
    case 32: if constexpr (BwdVecsAllowed<kW>(32)) { launch(std::integral_constant<int, 32>{}); return true; } break;
    default: break;
  }
  return false;
}

template <bool kCenter, bool kAdd>
void NormFwdImpl(DType dtype, const FwdArgs& a, cudaStream_t s) {
  dev::DispatchFloat(dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kN = Vec<T>::kN;
    const bool vec = a.c % kN == 0 && dev::Aligned16(a.x, a.w, a.y) && (!kCenter || dev::Aligned16(a.b)) &&
                     (!kAdd || dev::Aligned16(a.residual, a.sum));
    bool done =
        vec ? WithVecs<kN, kMaxElemsFwd>(a.c / kN, [&](auto v) { LaunchFwd<T, kN, decltype(v)::value, kCenter, kAdd>(a, s); })
            : WithVecs<1, kMaxElemsFwd>(a.c, [&](auto v) { LaunchFwd<T, 1, decltype(v)::value, kCenter, kAdd>(a, s); });
    if (!done) {
      const int64_t blocks = std::min<int64_t>(a.rows, 1 << 20);
      norm_fwd_loop_kernel<T, kCenter, kAdd><<<static_cast<unsigned>(blocks), kLoopThreads, 0, s>>>(
          static_cast<const T*>(a.x), static_cast<const T*>(a.residual), static_cast<const T*>(a.w),
          static_cast<const T*>(a.b), a.eps, static_cast<T*>(a.sum), static_cast<T*>(a.y), a.mean, a.rstd, a.rows,
          a.c);
      ZT_CUDA_CHECK(cudaGetLastError());
    }
  });
}

template <bool kCenter>
void NormFwd(DType dtype, const FwdArgs& a, cudaStream_t s) {
  ZT_CHECK((a.residual == nullptr) == (a.sum == nullptr)) << "norm forward: a residual needs a sum output";
  if (a.rows == 0) return;
  if (a.residual != nullptr) {
    NormFwdImpl<kCenter, true>(dtype, a, s);
  } else {
    NormFwdImpl<kCenter, false>(dtype, a, s);
  }
}

template <bool kCenter, bool kRes>
void NormBwdImpl(DType dtype, const BwdArgs& a, cudaStream_t s) {
  float* part = static_cast<float*>(a.workspace);
  dev::DispatchFloat(dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kN = Vec<T>::kN;
    if (a.rows == 0) {  // no rows: dw (and db) are zeros, as on the CPU (no slot is read)
      LaunchBwdFinal<T, kCenter>(part, 0, a.c, a.dw, a.db, s);
      return;
    }
    const bool vec = a.c % kN == 0 && dev::Aligned16(a.dy, a.x, a.w, a.dx) && (!kRes || dev::Aligned16(a.dresidual));
    bool done =
        vec ? WithBwdVecs<kN>(a.c / kN, [&](auto v) { LaunchBwd<T, kN, decltype(v)::value, kCenter, kRes>(a, part, s); })
            : WithBwdVecs<1>(a.c, [&](auto v) { LaunchBwd<T, 1, decltype(v)::value, kCenter, kRes>(a, part, s); });
    if (done) return;
    const int64_t blocks = std::min<int64_t>(a.rows, 1 << 20);
    norm_bwd_dx_loop_kernel<T, kCenter, kRes><<<static_cast<unsigned>(blocks), kLoopThreads, 0, s>>>(
        static_cast<const T*>(a.dy), static_cast<const T*>(a.x), static_cast<const T*>(a.w), a.mean, a.rstd,
        static_cast<const T*>(a.dresidual), static_cast<T*>(a.dx), a.rows, a.c);
    ZT_CUDA_CHECK(cudaGetLastError());
    const int slots = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(2 * a.cpu_chunks, 65535)));
    const size_t need = static_cast<size_t>(slots) * (kCenter ? 2 : 1) * a.c * sizeof(float);
    ZT_CHECK_GE(a.workspace_bytes, need) << "norm backward: workspace too small";
    dim3 grid((a.c + kPartColumns - 1) / kPartColumns, slots);
    norm_bwd_part_loop_kernel<T, kCenter><<<grid, kPartColumns, 0, s>>>(
        static_cast<const T*>(a.dy), static_cast<const T*>(a.x), a.mean, a.rstd, part, a.rows, a.c);
    ZT_CUDA_CHECK(cudaGetLastError());
    LaunchBwdFinal<T, kCenter>(part, slots, a.c, a.dw, a.db, s);
  });
}

template <bool kCenter>
void NormBwd(DType dtype, const BwdArgs& a, cudaStream_t s) {
  if (a.dresidual != nullptr) {
    NormBwdImpl<kCenter, true>(dtype, a, s);
  } else {
    NormBwdImpl<kCenter, false>(dtype, a, s);
  }
}

}  // namespace zt::norm_cuda
