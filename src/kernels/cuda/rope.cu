// CUDA kernel: rope (semantics in ir/ops/rope.cc, reference in kernels/cpu/rope.cc). As on the CPU,
// first the cos/sin tables (T x D/2 f32 each, in the op's workspace, same layout), then every
// (b, t, h) row rotated in f32. The angles are the CPU's: inv_freq = 1 / powf(theta, 2i / D) is
// computed on the host with the CPU kernel's very expression (so it is bit-identical; the table of
// D/2 values travels as a kernel argument), freq = float(t) * inv_freq, and the tables use the
// accurate cosf/sinf (not __cosf/__sinf). Heads wider than 2 * kMaxHalf fall back to the device's
// powf, which may differ from the host's in the last bit.
// Invariant: every output element depends only on its own row's pair (no reduction), and both
// elements of a pair are read before either is written, so out may alias x.
#include <cuda_runtime.h>

#include <cmath>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "core/mem_category.h"
#include "kernels/cuda/registry.h"
#include "kernels/cuda/vec.cuh"
#include "kernels/kernel.h"

namespace zt {
namespace {

using dev::FromF32;
using dev::ToF32;
using dev::Vec;

constexpr int kThreads = 256;
constexpr int kMaxHalf = 512;  // D/2 values passed by value (2 KB of kernel arguments)

struct InvFreq {
  float v[kMaxHalf];
};

// cos_t[t, i] = cos(t * inv_freq[i]), sin_t[t, i] = sign * sin(t * inv_freq[i]).
__global__ void rope_table_kernel(InvFreq inv, bool host_inv, float base, int64_t d, int64_t t_len, int64_t half,
                                  float sign, float* __restrict__ cos_t, float* __restrict__ sin_t) {
  const int64_t n = t_len * half;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = k / half, i = k % half;
    float inv_freq;
    if (host_inv) {
      inv_freq = inv.v[i];
    } else {
      float expo = static_cast<float>(2 * i) / static_cast<float>(d);
      inv_freq = 1.0f / powf(base, expo);
    }
    const float freq = static_cast<float>(t) * inv_freq;
    cos_t[k] = cosf(freq);
    sin_t[k] = sign * sinf(freq);
  }
}

// x, out [rows = B*T*H, D]; position t = (row / H) % T. One item = kW pairs (i, i + D/2).
template <typename T, int kW>
__global__ void rope_fwd_kernel(const T* x, T* out, const float* __restrict__ cos_t,
                                const float* __restrict__ sin_t, int64_t rows, int64_t t_len, int64_t h,
                                int64_t half) {
  const int64_t per_row = half / kW;
  const int64_t n = rows * per_row;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = k / per_row, i0 = (k % per_row) * kW;
    const int64_t t = (r / h) % t_len;
    const float* c = cos_t + t * half + i0;
    const float* s = sin_t + t * half + i0;
    const T* xr = x + r * 2 * half;
    T* yr = out + r * 2 * half;
    if constexpr (kW == 1) {
      const float x1 = ToF32(xr[i0]), x2 = ToF32(xr[i0 + half]);
      const float y1 = x1 * c[0] - x2 * s[0];
      const float y2 = x2 * c[0] + x1 * s[0];
      yr[i0] = FromF32<T>(y1);
      yr[i0 + half] = FromF32<T>(y2);
    } else {
      const Vec<T> a = dev::LoadVec(xr + i0), b = dev::LoadVec(xr + i0 + half);
      Vec<T> o1, o2;
#pragma unroll
      for (int j = 0; j < kW; ++j) {
        const float x1 = ToF32(a.v[j]), x2 = ToF32(b.v[j]);
        const float y1 = x1 * c[j] - x2 * s[j];
        const float y2 = x2 * c[j] + x1 * s[j];
        o1.v[j] = FromF32<T>(y1);
        o2.v[j] = FromF32<T>(y2);
      }
      dev::StoreVec(yr + i0, o1);
      dev::StoreVec(yr + i0 + half, o2);
    }
  }
}

Status RopeKernel(const KernelContext& c) {
  const Tensor& x = c.inputs[0];
  const Tensor& out = c.outputs[0];
  ZT_CHECK(x.dtype == out.dtype && x.shape == out.shape && x.shape.rank() == 4);
  const int64_t B = x.shape[0], T = x.shape[1], H = x.shape[2], D = x.shape[3];
  ZT_CHECK(D % 2 == 0) << "rope: odd head dim " << D;
  const int64_t half = D / 2;
  const size_t table_bytes = AlignedBytes(static_cast<size_t>(T * half) * 4);
  ZT_CHECK(c.workspace.nbytes() >= 2 * table_bytes) << "rope: workspace too small";
  if (x.numel() == 0) return OkStatus();
  float* cos_t = static_cast<float*>(c.workspace.data);                                      // (T, D/2)
  float* sin_t = reinterpret_cast<float*>(static_cast<char*>(c.workspace.data) + table_bytes);  // (T, D/2)
  cudaStream_t s = CudaStreamOf(c.stream);

  // The CPU kernel's arithmetic, in the same order and types (HF: inv_freq = 1 / base^(2i/D), f32).
  const float base = static_cast<float>(c.attrs.GetFloat("theta"));
  const float sign = c.attrs.GetBool("inverse") ? -1.0f : 1.0f;
  InvFreq inv{};
  const bool host_inv = half <= kMaxHalf;
  if (host_inv) {
    for (int64_t i = 0; i < half; ++i) {
      float expo = static_cast<float>(2 * i) / static_cast<float>(D);
      inv.v[i] = 1.0f / std::pow(base, expo);
    }
  }
  rope_table_kernel<<<dev::GridFor(T * half, kThreads), kThreads, 0, s>>>(inv, host_inv, base, D, T, half, sign,
                                                                           cos_t, sin_t);
  ZT_CUDA_CHECK(cudaGetLastError());

  const int64_t rows = B * T * H;
  dev::DispatchFloat(x.dtype, [&](auto tag) {
    using T_ = decltype(tag);
    constexpr int kN = Vec<T_>::kN;
    const T_* src = static_cast<const T_*>(x.data);
    T_* dst = static_cast<T_*>(out.data);
    if (half % kN == 0 && dev::Aligned16(src, dst)) {
      rope_fwd_kernel<T_, kN><<<dev::GridFor(rows * (half / kN), kThreads), kThreads, 0, s>>>(src, dst, cos_t, sin_t,
                                                                                            rows, T, H, half);
    } else {
      rope_fwd_kernel<T_, 1><<<dev::GridFor(rows * half, kThreads), kThreads, 0, s>>>(src, dst, cos_t, sin_t, rows,
                                                                                      T, H, half);
    }
    ZT_CUDA_CHECK(cudaGetLastError());
  });
  return OkStatus();
}

}  // namespace

void RegisterRopeCudaKernels(KernelRegistry& r) { r.Register("rope", DeviceKind::kCUDA, RopeKernel); }

}  // namespace zt
