// Our own CUDA attention kernels (the fallback path, and the only path for f32, head dims cuDNN
// does not take, a gradient through lse, and bottom-right causal masks with S != T). They follow
// FlashAttention-2: no T x S matrix is ever stored; key/value (or query/dout) tiles are streamed
// through shared memory in f32; the forward keeps an online softmax (running max and sum) per query
// row; the backward recomputes p = exp(scale q.k - lse) from the saved lse.
//   Thread layout: a block owns kRows rows (query rows for the forward and dq, key rows for dk/dv);
//   each row is split over R = kMaxD / 32 neighbouring lanes, each holding 32 of its dims in
//   registers as eight float4 chunks (chunk j of lane `sub` covers dims 4 (j R + sub) .. + 3, so a
//   warp's reads of one shared row are conflict-free). Dot products are summed over the R lanes
//   with xor shuffles. kMaxD is 32, 64 or 128 (the bucket of D); D == kMaxD compiles the exact fast
//   path, other D a guarded generic one (rows are zero-padded to a multiple of 4 in shared memory).
//   Backward: dk/dv by one block per (b, kv head, key tile) that loops over the heads of its group
//   and the query tiles in a fixed order; dq by one block per (b, head, query tile) looping over key
//   tiles. delta = dout.out - dlse is recomputed where needed. No atomics, no workspace: results are
//   bit-identical run to run.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "kernels/cuda/attention_cuda.cuh"

namespace zt::attn {
namespace {

constexpr int kRows = 64;   // rows owned by one block
constexpr int kTile = 32;   // rows of one shared-memory tile (a multiple of 8)
constexpr int kChunks = 8;  // float4 chunks per lane: 32 dims

template <typename T>
__device__ __forceinline__ float ToF(T x);
template <>
__device__ __forceinline__ float ToF<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ float ToF<__nv_bfloat16>(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
template <>
__device__ __forceinline__ float ToF<__half>(__half x) {
  return __half2float(x);
}

template <typename T>
__device__ __forceinline__ T FromF(float x);
template <>
__device__ __forceinline__ float FromF<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromF<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <>
__device__ __forceinline__ __half FromF<__half>(float x) {
  return __float2half_rn(x);
}

// Per-launch constants.
struct Geometry {
  int64_t B, T, H, S, Hkv, D;
  int64_t group;  // H / Hkv
  bool causal;
  float scale;
  int Dp;    // D rounded up to a multiple of 4: the row stride of shared tiles
  bool vec;  // rows may be read with 16-byte loads (D * sizeof(T) % 16 == 0, pointers aligned)
};

__device__ __forceinline__ int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ __forceinline__ int64_t Max64(int64_t a, int64_t b) { return a > b ? a : b; }

__device__ __forceinline__ float Dot4(float4 a, float4 b, float acc) {
  acc = fmaf(a.x, b.x, acc);
  acc = fmaf(a.y, b.y, acc);
  acc = fmaf(a.z, b.z, acc);
  return fmaf(a.w, b.w, acc);
}
__device__ __forceinline__ void Axpy4(float s, float4 x, float4& y) {
  y.x = fmaf(s, x.x, y.x);
  y.y = fmaf(s, x.y, y.y);
  y.z = fmaf(s, x.z, y.z);
  y.w = fmaf(s, x.w, y.w);
}

// Sum over the R lanes of a row (aligned groups of R consecutive lanes).
template <int R>
__device__ __forceinline__ float GroupSum(float v) {
#pragma unroll
  for (int o = 1; o < R; o <<= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// This lane's dims of one row (D contiguous elements at `row`) into registers; zeros past D or
// when !valid.
template <typename T, int R>
__device__ __forceinline__ void LoadRow(float4 (&r)[kChunks], const T* row, int D, int sub, bool valid) {
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    const int d0 = (j * R + sub) * 4;
    float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
    if (valid) {
      if (d0 + 0 < D) x.x = ToF(row[d0 + 0]);
      if (d0 + 1 < D) x.y = ToF(row[d0 + 1]);
      if (d0 + 2 < D) x.z = ToF(row[d0 + 2]);
      if (d0 + 3 < D) x.w = ToF(row[d0 + 3]);
    }
    r[j] = x;
  }
}

// mul * this lane's dims into the row (only dims < D).
template <typename T, int R>
__device__ __forceinline__ void StoreRow(const float4 (&r)[kChunks], float mul, T* row, int D, int sub) {
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    const int d0 = (j * R + sub) * 4;
    if (d0 + 0 < D) row[d0 + 0] = FromF<T>(r[j].x * mul);
    if (d0 + 1 < D) row[d0 + 1] = FromF<T>(r[j].y * mul);
    if (d0 + 2 < D) row[d0 + 2] = FromF<T>(r[j].z * mul);
    if (d0 + 3 < D) row[d0 + 3] = FromF<T>(r[j].w * mul);
  }
}

// Partial dot product of this lane's dims with a shared row (Dp4 float4 chunks).
template <int R, bool kExact>
__device__ __forceinline__ float DotPartial(const float4 (&r)[kChunks], const float4* srow, int Dp4, int sub) {
  float s = 0.f;
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    const int c = j * R + sub;
    if (kExact || c < Dp4) s = Dot4(r[j], srow[c], s);
  }
  return s;
}

// y += a * (this lane's dims of a shared row).
template <int R, bool kExact>
__device__ __forceinline__ void AxpyRow(float a, const float4* srow, int Dp4, int sub, float4 (&y)[kChunks]) {
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    const int c = j * R + sub;
    if (kExact || c < Dp4) Axpy4(a, srow[c], y[j]);
  }
}

// kTile rows of D elements (row i at g + i * ld) into shared f32 sm[i * Dp + d], zero-filling
// rows >= rows_valid and dims in [D, Dp). Whole block.
template <typename T>
__device__ void LoadTile(float* sm, const T* g, int64_t ld, int rows_valid, int D, int Dp, bool vec) {
  if (vec) {
    constexpr int V = 16 / sizeof(T);  // elements per 16-byte load; D % V == 0 so Dp == D
    const int per_row = D / V;
    for (int idx = threadIdx.x; idx < kTile * per_row; idx += blockDim.x) {
      const int i = idx / per_row, c = idx - i * per_row;
      float* dst = sm + i * Dp + c * V;
      if (i < rows_valid) {
        const uint4 raw = *reinterpret_cast<const uint4*>(g + i * ld + c * V);
        const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
        for (int u = 0; u < V; ++u) dst[u] = ToF(e[u]);
      } else {
#pragma unroll
        for (int u = 0; u < V; ++u) dst[u] = 0.f;
      }
    }
  } else {
    for (int idx = threadIdx.x; idx < kTile * Dp; idx += blockDim.x) {
      const int i = idx / Dp, d = idx - i * Dp;
      sm[idx] = (i < rows_valid && d < D) ? ToF(g[i * ld + d]) : 0.f;
    }
  }
}

// Keys [0, n_end) can be visible to some query of [t0, t0 + kRows) (bottom-right causal mask: query
// t sees keys n <= t + S - T).
__device__ __forceinline__ int64_t KeyEnd(const Geometry& g, int64_t t0) {
  if (!g.causal) return g.S;
  const int64_t last_t = Min64(t0 + kRows, g.T) - 1;
  return Max64(0, Min64(g.S, last_t + (g.S - g.T) + 1));
}

// ---- forward: one block per (b, h, kRows queries) ---------------------------------------------
template <typename T, int kMaxD, bool kExact>
__global__ void __launch_bounds__(kRows*(kMaxD / 32))
    FwdKernel(Geometry g, const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
              T* __restrict__ out, float* __restrict__ lse) {
  constexpr int R = kMaxD / 32;
  __shared__ __align__(16) float sk[kTile * kMaxD];
  __shared__ __align__(16) float sv[kTile * kMaxD];
  const int D = kExact ? kMaxD : static_cast<int>(g.D);
  const int Dp = kExact ? kMaxD : g.Dp;
  const int Dp4 = Dp / 4;
  const int64_t tiles = (g.T + kRows - 1) / kRows;
  const int64_t bh = blockIdx.x / tiles;
  const int64_t t0 = (blockIdx.x - bh * tiles) * kRows;
  const int64_t b = bh / g.H, h = bh - b * g.H, kh = h / g.group;
  const int row = threadIdx.x / R, sub = threadIdx.x - row * R;
  const int64_t t = t0 + row;
  const bool valid = t < g.T;
  const int64_t off = g.S - g.T;

  float4 qr[kChunks], acc[kChunks];
  LoadRow<T, R>(qr, q + ((b * g.T + (valid ? t : 0)) * g.H + h) * D, D, sub, valid);
#pragma unroll
  for (int j = 0; j < kChunks; ++j) acc[j] = make_float4(0.f, 0.f, 0.f, 0.f);
  float m = -INFINITY, l = 0.f;

  const int64_t n_end = KeyEnd(g, t0);
  const int64_t kv_ld = g.Hkv * D;
  const float4* sk4 = reinterpret_cast<const float4*>(sk);
  const float4* sv4 = reinterpret_cast<const float4*>(sv);
  for (int64_t n0 = 0; n0 < n_end; n0 += kTile) {
    const int rows_valid = static_cast<int>(Min64(kTile, g.S - n0));
    const int64_t base = ((b * g.S + n0) * g.Hkv + kh) * D;
    __syncthreads();
    LoadTile(sk, k + base, kv_ld, rows_valid, D, Dp, g.vec);
    LoadTile(sv, v + base, kv_ld, rows_valid, D, Dp, g.vec);
    __syncthreads();
    const int c_end = static_cast<int>(Min64(kTile, n_end - n0));
    for (int c0 = 0; c0 < c_end; c0 += 8) {
      float s[8];
      float mc = -INFINITY;
#pragma unroll
      for (int cc = 0; cc < 8; ++cc) {
        const int c = c0 + cc;
        const float dot = GroupSum<R>(DotPartial<R, kExact>(qr, sk4 + c * Dp4, Dp4, sub));
        const int64_t n = n0 + c;
        const bool vis = n < g.S && (!g.causal || n <= t + off);
        s[cc] = vis ? dot * g.scale : -INFINITY;
        mc = fmaxf(mc, s[cc]);
      }
      // Online softmax: rescale what was accumulated under the old max.
      const float m_new = fmaxf(m, mc);
      const float m_use = m_new == -INFINITY ? 0.f : m_new;  // nothing visible yet: keep zeros
      const float alpha = expf(m - m_use);
      l *= alpha;
#pragma unroll
      for (int j = 0; j < kChunks; ++j) {
        acc[j].x *= alpha;
        acc[j].y *= alpha;
        acc[j].z *= alpha;
        acc[j].w *= alpha;
      }
#pragma unroll
      for (int cc = 0; cc < 8; ++cc) {
        const float p = expf(s[cc] - m_use);
        l += p;
        AxpyRow<R, kExact>(p, sv4 + (c0 + cc) * Dp4, Dp4, sub, acc);
      }
      m = m_new;
    }
  }
  if (valid) {
    StoreRow<T, R>(acc, 1.f / l, out + ((b * g.T + t) * g.H + h) * D, D, sub);
    if (sub == 0) lse[bh * g.T + t] = m + logf(l);
  }
}

// ---- backward dk, dv: one block per (b, kv head, kRows keys) ----------------------------------
template <typename T, int kMaxD, bool kExact>
__global__ void __launch_bounds__(kRows*(kMaxD / 32))
    BwdKVKernel(Geometry g, const T* __restrict__ dout, const T* __restrict__ q, const T* __restrict__ k,
                const T* __restrict__ v, const T* __restrict__ out, const float* __restrict__ lse,
                const float* __restrict__ dlse, T* __restrict__ dk, T* __restrict__ dv) {
  constexpr int R = kMaxD / 32;
  __shared__ __align__(16) float sq[kTile * kMaxD];
  __shared__ __align__(16) float sdo[kTile * kMaxD];
  __shared__ float slse[kTile];
  __shared__ float sdelta[kTile];
  const int D = kExact ? kMaxD : static_cast<int>(g.D);
  const int Dp = kExact ? kMaxD : g.Dp;
  const int Dp4 = Dp / 4;
  const int64_t tiles = (g.S + kRows - 1) / kRows;
  const int64_t bkh = blockIdx.x / tiles;
  const int64_t n0 = (blockIdx.x - bkh * tiles) * kRows;
  const int64_t b = bkh / g.Hkv, kh = bkh - b * g.Hkv;
  const int row = threadIdx.x / R, sub = threadIdx.x - row * R;
  const int64_t n = n0 + row;
  const bool valid = n < g.S;
  const int64_t off = g.S - g.T;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nwarps = blockDim.x / 32;

  float4 kr[kChunks], vr[kChunks], dka[kChunks], dva[kChunks];
  const int64_t kv_row = ((b * g.S + (valid ? n : 0)) * g.Hkv + kh) * D;
  LoadRow<T, R>(kr, k + kv_row, D, sub, valid);
  LoadRow<T, R>(vr, v + kv_row, D, sub, valid);
#pragma unroll
  for (int j = 0; j < kChunks; ++j) {
    dka[j] = make_float4(0.f, 0.f, 0.f, 0.f);
    dva[j] = make_float4(0.f, 0.f, 0.f, 0.f);
  }
  // Queries that see none of this block's keys are skipped: t + off < n0.
  const int64_t m_begin = g.causal ? Max64(0, n0 - off) : 0;
  const int64_t q_ld = g.H * D;
  const float4* sq4 = reinterpret_cast<const float4*>(sq);
  const float4* sdo4 = reinterpret_cast<const float4*>(sdo);
  for (int64_t h = kh * g.group; h < (kh + 1) * g.group; ++h) {
    for (int64_t m0 = m_begin; m0 < g.T; m0 += kTile) {
      const int rows_valid = static_cast<int>(Min64(kTile, g.T - m0));
      const int64_t base = ((b * g.T + m0) * g.H + h) * D;
      __syncthreads();
      LoadTile(sq, q + base, q_ld, rows_valid, D, Dp, g.vec);
      LoadTile(sdo, dout + base, q_ld, rows_valid, D, Dp, g.vec);
      __syncthreads();
      // delta = dout . out - dlse and lse of the tile's queries, one warp per row.
      for (int r = warp; r < kTile; r += nwarps) {
        float part = 0.f;
        if (r < rows_valid) {
          const T* orow = out + base + r * q_ld;
          for (int d = lane; d < D; d += 32) part = fmaf(sdo[r * Dp + d], ToF(orow[d]), part);
        }
        part = WarpSum(part);
        if (lane == 0) {
          const int64_t li = (b * g.H + h) * g.T + m0 + r;
          slse[r] = r < rows_valid ? lse[li] : 0.f;
          sdelta[r] = r < rows_valid ? part - (dlse ? dlse[li] : 0.f) : 0.f;
        }
      }
      __syncthreads();
      for (int r = 0; r < rows_valid; ++r) {
        const float4* qrow = sq4 + r * Dp4;
        const float4* drow = sdo4 + r * Dp4;
        float sp = 0.f, dp = 0.f;
#pragma unroll
        for (int j = 0; j < kChunks; ++j) {
          const int c = j * R + sub;
          if (kExact || c < Dp4) {
            sp = Dot4(qrow[c], kr[j], sp);
            dp = Dot4(drow[c], vr[j], dp);
          }
        }
        sp = GroupSum<R>(sp);
        dp = GroupSum<R>(dp);
        const bool vis = valid && (!g.causal || n <= m0 + r + off);
        const float p = vis ? expf(sp * g.scale - slse[r]) : 0.f;
        const float ds = p * (dp - sdelta[r]);
        AxpyRow<R, kExact>(p, drow, Dp4, sub, dva);
        AxpyRow<R, kExact>(ds, qrow, Dp4, sub, dka);
      }
    }
  }
  if (valid) {
    StoreRow<T, R>(dka, g.scale, dk + kv_row, D, sub);
    StoreRow<T, R>(dva, 1.f, dv + kv_row, D, sub);
  }
}

// ---- backward dq: one block per (b, h, kRows queries) -----------------------------------------
template <typename T, int kMaxD, bool kExact>
__global__ void __launch_bounds__(kRows*(kMaxD / 32))
    BwdQKernel(Geometry g, const T* __restrict__ dout, const T* __restrict__ q, const T* __restrict__ k,
               const T* __restrict__ v, const T* __restrict__ out, const float* __restrict__ lse,
               const float* __restrict__ dlse, T* __restrict__ dq) {
  constexpr int R = kMaxD / 32;
  __shared__ __align__(16) float sk[kTile * kMaxD];
  __shared__ __align__(16) float sv[kTile * kMaxD];
  const int D = kExact ? kMaxD : static_cast<int>(g.D);
  const int Dp = kExact ? kMaxD : g.Dp;
  const int Dp4 = Dp / 4;
  const int64_t tiles = (g.T + kRows - 1) / kRows;
  const int64_t bh = blockIdx.x / tiles;
  const int64_t t0 = (blockIdx.x - bh * tiles) * kRows;
  const int64_t b = bh / g.H, h = bh - b * g.H, kh = h / g.group;
  const int row = threadIdx.x / R, sub = threadIdx.x - row * R;
  const int64_t t = t0 + row;
  const bool valid = t < g.T;
  const int64_t off = g.S - g.T;

  float4 qr[kChunks], dor[kChunks], dqa[kChunks];
  const int64_t q_row = ((b * g.T + (valid ? t : 0)) * g.H + h) * D;
  LoadRow<T, R>(qr, q + q_row, D, sub, valid);
  LoadRow<T, R>(dor, dout + q_row, D, sub, valid);
  float delta;
  {
    float4 orow[kChunks];
    LoadRow<T, R>(orow, out + q_row, D, sub, valid);
    float part = 0.f;
#pragma unroll
    for (int j = 0; j < kChunks; ++j) part = Dot4(dor[j], orow[j], part);
    delta = GroupSum<R>(part);
  }
  const int64_t li = bh * g.T + (valid ? t : 0);
  if (valid && dlse) delta -= dlse[li];
  const float lse_t = valid ? lse[li] : 0.f;
#pragma unroll
  for (int j = 0; j < kChunks; ++j) dqa[j] = make_float4(0.f, 0.f, 0.f, 0.f);

  const int64_t n_end = KeyEnd(g, t0);
  const int64_t kv_ld = g.Hkv * D;
  const float4* sk4 = reinterpret_cast<const float4*>(sk);
  const float4* sv4 = reinterpret_cast<const float4*>(sv);
  for (int64_t n0 = 0; n0 < n_end; n0 += kTile) {
    const int rows_valid = static_cast<int>(Min64(kTile, g.S - n0));
    const int64_t base = ((b * g.S + n0) * g.Hkv + kh) * D;
    __syncthreads();
    LoadTile(sk, k + base, kv_ld, rows_valid, D, Dp, g.vec);
    LoadTile(sv, v + base, kv_ld, rows_valid, D, Dp, g.vec);
    __syncthreads();
    const int c_end = static_cast<int>(Min64(kTile, n_end - n0));
    for (int c = 0; c < c_end; ++c) {
      const float4* krow = sk4 + c * Dp4;
      const float4* vrow = sv4 + c * Dp4;
      float sp = 0.f, dp = 0.f;
#pragma unroll
      for (int j = 0; j < kChunks; ++j) {
        const int cc = j * R + sub;
        if (kExact || cc < Dp4) {
          sp = Dot4(qr[j], krow[cc], sp);
          dp = Dot4(dor[j], vrow[cc], dp);
        }
      }
      sp = GroupSum<R>(sp);
      dp = GroupSum<R>(dp);
      const int64_t nn = n0 + c;
      const bool vis = !g.causal || nn <= t + off;
      const float p = vis ? expf(sp * g.scale - lse_t) : 0.f;
      const float ds = p * (dp - delta);
      AxpyRow<R, kExact>(ds, krow, Dp4, sub, dqa);
    }
  }
  if (valid) StoreRow<T, R>(dqa, g.scale, dq + q_row, D, sub);
}

// ---- launch -----------------------------------------------------------------------------------
bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename T>
Geometry MakeGeometry(const AttnDims& d, std::initializer_list<const void*> ptrs) {
  Geometry g{d.B, d.T, d.H, d.S, d.Hkv, d.D, d.H / d.Hkv, d.causal, d.scale,
             static_cast<int>((d.D + 3) / 4 * 4), false};
  bool vec = (d.D * static_cast<int64_t>(sizeof(T))) % 16 == 0;
  for (const void* p : ptrs) vec = vec && (p == nullptr || Aligned16(p));
  g.vec = vec;
  return g;
}

unsigned Blocks(int64_t rows_total_tiles) {
  ZT_CHECK(rows_total_tiles <= 0x7fffffff) << "attention: grid of " << rows_total_tiles << " blocks is too large";
  return static_cast<unsigned>(rows_total_tiles);
}

template <typename T, int kMaxD, bool kExact>
void LaunchForward(const Geometry& g, const T* q, const T* k, const T* v, T* out, float* lse, cudaStream_t s) {
  const int64_t blocks = g.B * g.H * ((g.T + kRows - 1) / kRows);
  if (blocks == 0) return;
  FwdKernel<T, kMaxD, kExact><<<Blocks(blocks), kRows * (kMaxD / 32), 0, s>>>(g, q, k, v, out, lse);
  ZT_CUDA_CHECK(cudaGetLastError());
}

template <typename T, int kMaxD, bool kExact>
void LaunchBackward(const Geometry& g, const T* dout, const T* q, const T* k, const T* v, const T* out,
                    const float* lse, const float* dlse, T* dq, T* dk, T* dv, cudaStream_t s) {
  const int threads = kRows * (kMaxD / 32);
  const int64_t kv_blocks = g.B * g.Hkv * ((g.S + kRows - 1) / kRows);
  if (kv_blocks > 0) {
    BwdKVKernel<T, kMaxD, kExact><<<Blocks(kv_blocks), threads, 0, s>>>(g, dout, q, k, v, out, lse, dlse, dk, dv);
    ZT_CUDA_CHECK(cudaGetLastError());
  }
  const int64_t q_blocks = g.B * g.H * ((g.T + kRows - 1) / kRows);
  if (q_blocks > 0) {
    BwdQKernel<T, kMaxD, kExact><<<Blocks(q_blocks), threads, 0, s>>>(g, dout, q, k, v, out, lse, dlse, dq);
    ZT_CUDA_CHECK(cudaGetLastError());
  }
}

// Calls fn.template operator()<kMaxD, kExact>() for the bucket of D.
template <typename Fn>
void DispatchHeadDim(int64_t D, Fn&& fn) {
  ZT_CHECK(D >= 1 && D <= kMaxHeadDim) << "attention: head dim " << D << " is not in [1, " << kMaxHeadDim << "]";
  if (D == 32) return fn.template operator()<32, true>();
  if (D == 64) return fn.template operator()<64, true>();
  if (D == 128) return fn.template operator()<128, true>();
  if (D < 32) return fn.template operator()<32, false>();
  if (D < 64) return fn.template operator()<64, false>();
  return fn.template operator()<128, false>();
}

template <typename Fn>
void DispatchType(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kF32: return fn(float{});
    case DType::kBF16: return fn(__nv_bfloat16{});
    case DType::kF16: return fn(__half{});
    default: ZT_CHECK(false) << "attention: dtype " << DTypeName(dtype) << " is not floating";
  }
}

}  // namespace

void FallbackForward(const AttnDims& d, DType dtype, const void* q, const void* k, const void* v, void* out,
                     float* lse, cudaStream_t stream) {
  DispatchType(dtype, [&](auto tag) {
    using T = decltype(tag);
    const Geometry g = MakeGeometry<T>(d, {q, k, v});
    DispatchHeadDim(d.D, [&]<int kMaxD, bool kExact>() {
      LaunchForward<T, kMaxD, kExact>(g, static_cast<const T*>(q), static_cast<const T*>(k),
                                      static_cast<const T*>(v), static_cast<T*>(out), lse, stream);
    });
  });
}

void FallbackBackward(const AttnDims& d, DType dtype, const void* dout, const void* q, const void* k,
                      const void* v, const void* out, const float* lse, const float* dlse, void* dq, void* dk,
                      void* dv, cudaStream_t stream) {
  DispatchType(dtype, [&](auto tag) {
    using T = decltype(tag);
    const Geometry g = MakeGeometry<T>(d, {dout, q, k, v});
    DispatchHeadDim(d.D, [&]<int kMaxD, bool kExact>() {
      LaunchBackward<T, kMaxD, kExact>(g, static_cast<const T*>(dout), static_cast<const T*>(q),
                                       static_cast<const T*>(k), static_cast<const T*>(v),
                                       static_cast<const T*>(out), lse, dlse, static_cast<T*>(dq),
                                       static_cast<T*>(dk), static_cast<T*>(dv), stream);
    });
  });
}

}  // namespace zt::attn
