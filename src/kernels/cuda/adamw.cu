// CUDA kernel of adamw (semantics in ir/ops/adamw.cc, reference in kernels/cpu/adamw.cc), in place.
// Invariant: bit-identical to the CPU kernel. The per-step coefficients (clipping coefficient from
// grad_sumsq, decay, step size, bias-correction root) are computed ON THE DEVICE from the scalars
// input and grad_sumsq (device memory; the host never reads them, never synchronizes), in double
// with the CPU's operations in the CPU's order; the element update uses explicitly rounded f32
// operations (__fmul_rn, __fadd_rn, __fdiv_rn, __fsqrt_rn) so nvcc cannot contract them into FMAs
// that the CPU build (x86-64 baseline, no FMA) does not use. A non-finite grad_sumsq skips the
// step: every thread sees it and writes nothing. When every pointer is 16-byte aligned a thread
// moves 8 elements with 16-byte loads/stores (one for bf16/f16 param or grad, two for each f32
// state); the grid covers the tensor at one vector a thread; scalar tail. The CPU divides (by
// bc2_sqrt, by denom) per element, so this kernel does too (__fdiv_rn): a reciprocal would change
// the bits.
#include <cuda_runtime.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "ir/ops/adamw.h"
#include "kernels/cuda/registry.h"
#include "kernels/cuda/vec.cuh"
#include "kernels/kernel.h"

namespace zt {
namespace {

constexpr int kThreads = 256;
// Elements per thread step: one 16-byte vector of a 16-bit param/grad, two of each f32 state.
constexpr int kVec = 8;

template <typename P, typename G>
struct AdamWArgs {
  P* p;
  const G* g;
  float* m;
  float* v;
  float* w;  // f32 master weights, or nullptr
  const float* scalars;     // ir::AdamWScalar layout
  const float* grad_sumsq;  // f32[]
  int64_t n;
  double weight_decay;
  float b1, one_minus_b1, b2, one_minus_b2, eps;
  bool vec;
};

struct Coeffs {
  float gmult, decay, neg_step, bc2_sqrt;
  bool skip;
};

// The CPU's scalar prologue, in double, operation by operation.
__device__ Coeffs ComputeCoeffs(const float* scalars, const float* grad_sumsq, double weight_decay) {
  Coeffs c;
  float ss = *grad_sumsq;
  c.skip = !isfinite(ss);
  double lr = scalars[ir::kAdamWLr];
  double bc1 = scalars[ir::kAdamWBiasCorrection1];
  double bc2 = scalars[ir::kAdamWBiasCorrection2];
  double mult = scalars[ir::kAdamWGradMultiplier];
  double max_norm = scalars[ir::kAdamWMaxNorm];
  double norm = __dmul_rn(__dsqrt_rn(static_cast<double>(ss)), mult);
  double clip = 1.0;  // ir::ClipCoefficient
  if (max_norm > 0) {
    double q = __ddiv_rn(max_norm, __dadd_rn(norm, 1e-6));
    clip = q < 1.0 ? q : 1.0;
  }
  c.gmult = static_cast<float>(__dmul_rn(mult, clip));
  c.decay = static_cast<float>(__dadd_rn(1.0, -__dmul_rn(lr, weight_decay)));
  c.neg_step = static_cast<float>(-__ddiv_rn(lr, bc1));
  c.bc2_sqrt = static_cast<float>(__dsqrt_rn(bc2));
  return c;
}

// One element: returns the new weight (f32), updates mi and vi.
__device__ __forceinline__ float Update(float gi, float wi, float& mi, float& vi, const Coeffs& c, float b1,
                                        float one_minus_b1, float b2, float one_minus_b2, float eps) {
  if (c.gmult != 1.0f) gi = __fmul_rn(gi, c.gmult);
  float pi = __fmul_rn(wi, c.decay);
  mi = __fadd_rn(__fmul_rn(mi, b1), __fmul_rn(gi, one_minus_b1));
  vi = __fadd_rn(__fmul_rn(vi, b2), __fmul_rn(__fmul_rn(one_minus_b2, gi), gi));
  float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), c.bc2_sqrt), eps);
  return __fadd_rn(pi, __fmul_rn(c.neg_step, __fdiv_rn(mi, denom)));
}

// kVec consecutive elements of one tensor as f32, moved with 16-byte loads/stores: one for a
// 16-bit type, two for f32. The pointer must be 16-byte aligned.
template <typename T>
__device__ __forceinline__ void LoadVec8(const T* p, float (&out)[kVec]) {
  constexpr int kN = dev::Vec<T>::kN;
#pragma unroll
  for (int h = 0; h < kVec / kN; ++h) {
    const dev::Vec<T> a = dev::LoadVec(p + h * kN);
#pragma unroll
    for (int e = 0; e < kN; ++e) out[h * kN + e] = dev::ToF32(a.v[e]);
  }
}

template <typename T>
__device__ __forceinline__ void StoreVec8(T* p, const float (&in)[kVec]) {
  constexpr int kN = dev::Vec<T>::kN;
#pragma unroll
  for (int h = 0; h < kVec / kN; ++h) {
    dev::Vec<T> a;
#pragma unroll
    for (int e = 0; e < kN; ++e) a.v[e] = dev::FromF32<T>(in[h * kN + e]);
    dev::StoreVec(p + h * kN, a);
  }
}

// The state of one vector of kVec elements, loaded before it is updated.
struct Loaded {
  float g[kVec], w[kVec], m[kVec], v[kVec];
};

template <typename P, typename G>
__device__ __forceinline__ void LoadVector(const AdamWArgs<P, G>& a, int64_t i0, Loaded& l) {
  LoadVec8(a.g + i0, l.g);
  LoadVec8(a.m + i0, l.m);
  LoadVec8(a.v + i0, l.v);
  if (a.w) {
    LoadVec8(a.w + i0, l.w);
  } else {
    LoadVec8(a.p + i0, l.w);
  }
}

// One thread per vector of kVec elements (grid-stride when the grid is capped). Each thread
// computes the step's coefficients itself (no barrier; the same bits in every thread) after it
// has issued the loads of its first vector, so their latencies overlap.
template <typename P, typename G>
__global__ void __launch_bounds__(kThreads) adamw_fwd_kernel(AdamWArgs<P, G> a) {
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t nv = a.vec ? a.n / kVec : 0;
  int64_t k = tid;
  Loaded l;
  if (k < nv) LoadVector(a, k * kVec, l);
  const Coeffs c = ComputeCoeffs(a.scalars, a.grad_sumsq, a.weight_decay);
  if (c.skip) return;  // overflow: leave every state as it is
  while (k < nv) {
    const int64_t i0 = k * kVec;
    float pv[kVec];
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      pv[e] = Update(l.g[e], l.w[e], l.m[e], l.v[e], c, a.b1, a.one_minus_b1, a.b2, a.one_minus_b2, a.eps);
    }
    StoreVec8(a.m + i0, l.m);
    StoreVec8(a.v + i0, l.v);
    if (a.w) StoreVec8(a.w + i0, pv);
    StoreVec8(a.p + i0, pv);
    k += stride;
    if (k < nv) LoadVector(a, k * kVec, l);
  }
  // The tail (a.n % kVec elements), or every element when a tensor is not 16-byte aligned.
  for (int64_t i = nv * kVec + tid; i < a.n; i += stride) {
    float mi = a.m[i], vi = a.v[i];
    float wi = a.w ? a.w[i] : dev::ToF32(a.p[i]);
    wi = Update(dev::ToF32(a.g[i]), wi, mi, vi, c, a.b1, a.one_minus_b1, a.b2, a.one_minus_b2, a.eps);
    a.m[i] = mi;
    a.v[i] = vi;
    if (a.w) a.w[i] = wi;
    a.p[i] = dev::FromF32<P>(wi);
  }
}

Status AdamWKernel(const KernelContext& c) {
  // Outputs alias inputs (in place): write through the outputs, read through the inputs.
  ZT_CHECK(c.outputs[0].data == c.inputs[0].data && c.outputs[1].data == c.inputs[2].data &&
           c.outputs[2].data == c.inputs[3].data)
      << "adamw must run in place";
  const Tensor& param = c.outputs[0];
  const Tensor& grad = c.inputs[1];
  int64_t n = param.numel();
  if (n == 0) return OkStatus();
  ZT_CHECK(c.inputs[2].dtype == DType::kF32 && c.inputs[3].dtype == DType::kF32 && c.inputs[4].dtype == DType::kF32 &&
           c.inputs[5].dtype == DType::kF32);
  ZT_CHECK_EQ(grad.numel(), n);
  double beta1 = c.attrs.GetFloat("beta1"), beta2 = c.attrs.GetFloat("beta2");
  float* master = c.inputs.size() == 7 ? static_cast<float*>(c.outputs[3].data) : nullptr;
  cudaStream_t s = CudaStreamOf(c.stream);
  dev::DispatchFloat(param.dtype, [&](auto ptag) {
    using P = decltype(ptag);
    dev::DispatchFloat(grad.dtype, [&](auto gtag) {
      using G = decltype(gtag);
      AdamWArgs<P, G> a;
      a.p = static_cast<P*>(param.data);
      a.g = static_cast<const G*>(grad.data);
      a.m = static_cast<float*>(c.outputs[1].data);
      a.v = static_cast<float*>(c.outputs[2].data);
      a.w = master;
      a.scalars = static_cast<const float*>(c.inputs[4].data);
      a.grad_sumsq = static_cast<const float*>(c.inputs[5].data);
      a.n = n;
      a.weight_decay = c.attrs.GetFloat("weight_decay");
      // Host-side constants exactly as the CPU kernel rounds them.
      a.b1 = static_cast<float>(beta1);
      a.one_minus_b1 = static_cast<float>(1.0 - beta1);
      a.b2 = static_cast<float>(beta2);
      a.one_minus_b2 = static_cast<float>(1.0 - beta2);
      a.eps = static_cast<float>(c.attrs.GetFloat("eps"));
      a.vec = dev::Aligned16(a.p, a.g, a.m, a.v) && (master == nullptr || dev::Aligned16(master));
      // One thread per vector (or per element on the scalar path), capped at 2^31 threads.
      const int64_t work = a.vec ? (n + kVec - 1) / kVec : n;
      adamw_fwd_kernel<P, G><<<dev::GridFor(work, kThreads, int64_t{1} << 23), kThreads, 0, s>>>(a);
      ZT_CUDA_CHECK(cudaGetLastError());
    });
  });
  return OkStatus();
}

}  // namespace

void RegisterAdamWCudaKernels(KernelRegistry& r) { r.Register("adamw", DeviceKind::kCUDA, AdamWKernel); }

}  // namespace zt
