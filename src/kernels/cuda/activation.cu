// CUDA kernels: gelu, gelu_bwd, silu, silu_bwd, swiglu, swiglu_bwd (semantics in
// ir/ops/activation.cc, reference in kernels/cpu/activation.cc). Elementwise in f32 with the CPU's
// formulas and the same accurate functions (expf, tanhf; no fast-math intrinsics): finite for every
// finite input (the sigmoid never evaluates exp of a positive argument; gelu' skips the sech^2
// term once tanh has saturated). Grid-stride loops over 16-byte vectors when every operand is
// 16-byte aligned, then a scalar tail; scalar throughout otherwise.
// Invariant: each output element depends only on the same element of the inputs.
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
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluC = 0.044715f;

__device__ __forceinline__ float Sigmoid(float x) {
  if (x >= 0) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

__device__ __forceinline__ float GeluF(float x) {
  float t = tanhf(kSqrt2OverPi * (x + kGeluC * x * x * x));
  return 0.5f * x * (1.0f + t);
}

__device__ __forceinline__ float GeluGrad(float x) {
  float x2 = x * x;
  float t = tanhf(kSqrt2OverPi * (x + kGeluC * x2 * x));
  float sech2 = 1.0f - t * t;
  float d = 0.5f * (1.0f + t);
  if (sech2 != 0.0f) d += 0.5f * x * sech2 * kSqrt2OverPi * (1.0f + 3.0f * kGeluC * x2);
  return d;
}

__device__ __forceinline__ float SiluF(float x) { return x * Sigmoid(x); }

__device__ __forceinline__ float SiluGrad(float x) {
  float s = Sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}

// The element functions: f(inputs...) -> outputs, all f32.
struct GeluFwd {
  static constexpr int kIn = 1, kOut = 1;
  __device__ void operator()(const float* in, float* out) const { out[0] = GeluF(in[0]); }
};
struct GeluBwd {  // (dy, x) -> dx
  static constexpr int kIn = 2, kOut = 1;
  __device__ void operator()(const float* in, float* out) const { out[0] = in[0] * GeluGrad(in[1]); }
};
struct SiluFwd {
  static constexpr int kIn = 1, kOut = 1;
  __device__ void operator()(const float* in, float* out) const { out[0] = SiluF(in[0]); }
};
struct SiluBwd {  // (dy, x) -> dx
  static constexpr int kIn = 2, kOut = 1;
  __device__ void operator()(const float* in, float* out) const { out[0] = in[0] * SiluGrad(in[1]); }
};
struct SwiGluFwd {  // (gate, up) -> y
  static constexpr int kIn = 2, kOut = 1;
  __device__ void operator()(const float* in, float* out) const { out[0] = SiluF(in[0]) * in[1]; }
};
struct SwiGluBwd {  // (dy, gate, up) -> (dgate, dup)
  static constexpr int kIn = 3, kOut = 2;
  __device__ void operator()(const float* in, float* out) const {
    float d = in[0], g = in[1], u = in[2];
    float s = Sigmoid(g);
    out[0] = d * u * (s * (1.0f + g * (1.0f - s)));
    out[1] = d * (g * s);
  }
};

template <typename T>
struct Ptrs {
  const T* in[3];
  T* out[2];
};

// out_k[i] = F(in_0[i], ...)_k for i < n. vec: every pointer 16-byte aligned.
template <typename T, typename F>
__global__ void activation_kernel(Ptrs<T> p, int64_t n, bool vec) {
  constexpr int kN = Vec<T>::kN;
  const F f;
  int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t done = 0;
  if (vec) {
    int64_t nv = n / kN;
    for (int64_t v = tid; v < nv; v += stride) {
      Vec<T> a[F::kIn], r[F::kOut];
#pragma unroll
      for (int j = 0; j < F::kIn; ++j) a[j] = dev::LoadVec(p.in[j] + v * kN);
#pragma unroll
      for (int k = 0; k < kN; ++k) {
        float in[F::kIn], out[F::kOut];
#pragma unroll
        for (int j = 0; j < F::kIn; ++j) in[j] = ToF32(a[j].v[k]);
        f(in, out);
#pragma unroll
        for (int j = 0; j < F::kOut; ++j) r[j].v[k] = FromF32<T>(out[j]);
      }
#pragma unroll
      for (int j = 0; j < F::kOut; ++j) dev::StoreVec(p.out[j] + v * kN, r[j]);
    }
    done = nv * kN;
  }
  for (int64_t i = done + tid; i < n; i += stride) {
    float in[F::kIn], out[F::kOut];
#pragma unroll
    for (int j = 0; j < F::kIn; ++j) in[j] = ToF32(p.in[j][i]);
    f(in, out);
#pragma unroll
    for (int j = 0; j < F::kOut; ++j) p.out[j][i] = FromF32<T>(out[j]);
  }
}

// Runs F over the node's inputs and outputs (all of one shape and floating dtype).
template <typename F>
Status Run(const KernelContext& c) {
  ZT_CHECK_EQ(static_cast<int>(c.inputs.size()), F::kIn);
  ZT_CHECK_EQ(static_cast<int>(c.outputs.size()), F::kOut);
  const Tensor& first = c.inputs[0];
  for (const Tensor& t : c.inputs) ZT_CHECK(t.dtype == first.dtype && t.shape == first.shape) << "activation operands";
  for (const Tensor& t : c.outputs) ZT_CHECK(t.dtype == first.dtype && t.shape == first.shape) << "activation outputs";
  const int64_t n = first.numel();
  if (n == 0) return OkStatus();
  cudaStream_t s = CudaStreamOf(c.stream);
  dev::DispatchFloat(first.dtype, [&](auto tag) {
    using T = decltype(tag);
    Ptrs<T> p{};
    bool vec = true;
    for (int j = 0; j < F::kIn; ++j) {
      p.in[j] = static_cast<const T*>(c.inputs[j].data);
      vec = vec && dev::Aligned16(p.in[j]);
    }
    for (int j = 0; j < F::kOut; ++j) {
      p.out[j] = static_cast<T*>(c.outputs[j].data);
      vec = vec && dev::Aligned16(p.out[j]);
    }
    const int64_t items = vec ? n / Vec<T>::kN + 1 : n;
    activation_kernel<T, F><<<dev::GridFor(items, kThreads), kThreads, 0, s>>>(p, n, vec);
    ZT_CUDA_CHECK(cudaGetLastError());
  });
  return OkStatus();
}

}  // namespace

void RegisterActivationCudaKernels(KernelRegistry& r) {
  r.Register("gelu", DeviceKind::kCUDA, Run<GeluFwd>);
  r.Register("gelu_bwd", DeviceKind::kCUDA, Run<GeluBwd>);
  r.Register("silu", DeviceKind::kCUDA, Run<SiluFwd>);
  r.Register("silu_bwd", DeviceKind::kCUDA, Run<SiluBwd>);
  r.Register("swiglu", DeviceKind::kCUDA, Run<SwiGluFwd>);
  r.Register("swiglu_bwd", DeviceKind::kCUDA, Run<SwiGluBwd>);
}

}  // namespace zt
