// vec.cuh: small device helpers shared by the CUDA kernel families.
//  - DeviceType<T>: the CUDA storage type of a host element type (BFloat16 -> __nv_bfloat16,
//    Half -> __half, everything else unchanged; same size and bits, so a device pointer of a
//    tensor can be reinterpret_cast between them).
//  - ToF32 / FromF32<T>: f32 compute over any float storage, bit for bit as core/dtype.h's ToF32 /
//    FromF32 on the host. Widening is exact (NaN payloads too); narrowing to bf16/f16 rounds to
//    nearest, ties to even (cvt.rn); NaN keeps its sign and top payload bits with the quiet bit
//    forced, as on the host.
//  - Vec<T>: 16 bytes of T (kN = 16 / sizeof(T) elements), aligned to 16, for 128-bit loads and
//    stores (LoadVec / StoreVec). Invariant: only call them on 16-byte aligned addresses with kN
//    valid elements; test with Aligned16(ptr...) and handle tails with scalar code.
//  - DispatchFloat(dtype, f): host helper that calls f(T{}) with T the device type of a floating
//    dtype (float, __nv_bfloat16, __half); CHECK-fails on other dtypes.
//  - GridFor(n, threads): a 1D grid size for grid-stride loops (capped, at least 1).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "core/check.h"
#include "core/dtype.h"

namespace zt::dev {

template <typename T>
struct DeviceType {
  using type = T;
};
template <>
struct DeviceType<BFloat16> {
  using type = __nv_bfloat16;
};
template <>
struct DeviceType<Half> {
  using type = __half;
};

__device__ __forceinline__ float ToF32(float v) { return v; }
// Widening by bits, so NaN payloads survive exactly as on the host (cvt may canonicalize them).
__device__ __forceinline__ float ToF32(__nv_bfloat16 v) {
  return __uint_as_float(static_cast<unsigned>(__bfloat16_as_ushort(v)) << 16);
}
__device__ __forceinline__ float ToF32(__half v) {
  unsigned h = __half_as_ushort(v);
  if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0) {  // NaN: sign, exponent all ones, payload
    return __uint_as_float(((h & 0x8000u) << 16) | 0x7f800000u | ((h & 0x3ffu) << 13));
  }
  return __half2float(v);
}

template <typename T>
__device__ __forceinline__ T FromF32(float v);
template <>
__device__ __forceinline__ float FromF32<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 FromF32<__nv_bfloat16>(float v) {
  if (v != v) {  // NaN: the host's bits (cvt would give the canonical NaN)
    return __ushort_as_bfloat16(static_cast<unsigned short>((__float_as_uint(v) >> 16) | 0x0040u));
  }
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ __half FromF32<__half>(float v) {
  if (v != v) {
    unsigned x = __float_as_uint(v);
    return __ushort_as_half(static_cast<unsigned short>(((x >> 16) & 0x8000u) | 0x7e00u | ((x & 0x7fffffu) >> 13)));
  }
  return __float2half_rn(v);
}

template <typename T>
struct alignas(16) Vec {
  static constexpr int kN = 16 / sizeof(T);
  T v[kN];
};

template <typename T>
__device__ __forceinline__ Vec<T> LoadVec(const T* p) {
  return *reinterpret_cast<const Vec<T>*>(p);
}
template <typename T>
__device__ __forceinline__ void StoreVec(T* p, const Vec<T>& x) {
  *reinterpret_cast<Vec<T>*>(p) = x;
}

// True when every pointer is 16-byte aligned (host or device code).
__host__ __device__ inline bool Aligned16() { return true; }
template <typename P, typename... Rest>
__host__ __device__ inline bool Aligned16(const P* p, const Rest*... rest) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0 && Aligned16(rest...);
}

template <typename F>
void DispatchFloat(DType t, F&& f) {
  switch (t) {
    case DType::kF32: f(float{}); return;
    case DType::kBF16: f(__nv_bfloat16{}); return;
    case DType::kF16: f(__half{}); return;
    default: ZT_CHECK(false) << "not a floating dtype: " << DTypeName(t);
  }
}

inline unsigned GridFor(int64_t n, int threads, int64_t max_blocks = 65535 * 8) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > max_blocks) b = max_blocks;
  return static_cast<unsigned>(b);
}

}  // namespace zt::dev
