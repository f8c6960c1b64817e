// CUDA kernels of adamw and adamw_multi (semantics in ir/ops/adamw.cc, reference in
// kernels/cpu/adamw.cc), in place.
// Invariant: bit-identical to the CPU kernel. The per-step coefficients (clipping coefficient from
// grad_sumsq, decay, step size, bias-correction root) are computed ON THE DEVICE from the scalars
// input and grad_sumsq (device memory; the host never reads them, never synchronizes), in double
// with the CPU's operations in the CPU's order; the element update uses explicitly rounded f32
// operations (__fmul_rn, __fadd_rn, __fdiv_rn, __fsqrt_rn) so nvcc cannot contract them into FMAs
// that the CPU build (x86-64 baseline, no FMA) does not use. A non-finite grad_sumsq skips the
// step: every thread sees it and writes nothing. When every pointer of a tensor is 16-byte aligned
// a thread moves 8 elements with 16-byte loads/stores (one for bf16/f16 param or grad, two for
// each f32 state); scalar tail. The CPU divides (by bc2_sqrt, by denom) per element, so these
// kernels do too (__fdiv_rn): a reciprocal would change the bits.
//  - adamw: the grid covers the tensor at one vector a thread (grid-stride when capped).
//  - adamw_multi: one launch per up to kMultiTensors tensors, whose descriptors (pointers, size,
//    first block, vector path) travel BY VALUE in the kernel parameter (<= 4 KB; a CUDA graph
//    captures it, so no device-side table). Each block updates one kMultiChunk-element chunk of
//    one tensor, found from the first-block indices. Every element goes through the same device
//    functions as adamw's, so the result equals k adamw launches bit for bit.
#include <cuda_runtime.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "ir/ops/adamw.h"
#include "kernels/adamw_multi_layout.h"
#include "kernels/cuda/registry.h"
#include "kernels/cuda/vec.cuh"
#include "kernels/kernel.h"

namespace zt {
namespace {

constexpr int kThreads = 256;
// Elements per thread step: one 16-byte vector of a 16-bit param/grad, two of each f32 state.
constexpr int kVec = 8;

// One tensor's memory: parameter, gradient, moments and (or nullptr) f32 master weights.
template <typename P, typename G>
struct TensorPtrs {
  P* p;
  const G* g;
  float* m;
  float* v;
  float* w;  // f32 master weights, or nullptr
  bool Aligned() const { return dev::Aligned16(p, g, m, v) && (w == nullptr || dev::Aligned16(w)); }
};

// The node's attributes, rounded on the host exactly as the CPU kernel rounds them.
struct Hyper {
  double weight_decay;
  float b1, one_minus_b1, b2, one_minus_b2, eps;
};

Hyper HyperOf(const ir::AttrMap& attrs) {
  const double beta1 = attrs.GetFloat("beta1"), beta2 = attrs.GetFloat("beta2");
  Hyper h;
  h.weight_decay = attrs.GetFloat("weight_decay");
  h.b1 = static_cast<float>(beta1);
  h.one_minus_b1 = static_cast<float>(1.0 - beta1);
  h.b2 = static_cast<float>(beta2);
  h.one_minus_b2 = static_cast<float>(1.0 - beta2);
  h.eps = static_cast<float>(attrs.GetFloat("eps"));
  return h;
}

template <typename P, typename G>
struct AdamWArgs {
  TensorPtrs<P, G> t;
  const float* scalars;     // ir::AdamWScalar layout
  const float* grad_sumsq;  // f32[]
  int64_t n;
  Hyper h;
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
__device__ __forceinline__ float Update(float gi, float wi, float& mi, float& vi, const Coeffs& c, const Hyper& h) {
  if (c.gmult != 1.0f) gi = __fmul_rn(gi, c.gmult);
  float pi = __fmul_rn(wi, c.decay);
  mi = __fadd_rn(__fmul_rn(mi, h.b1), __fmul_rn(gi, h.one_minus_b1));
  vi = __fadd_rn(__fmul_rn(vi, h.b2), __fmul_rn(__fmul_rn(h.one_minus_b2, gi), gi));
  float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), c.bc2_sqrt), h.eps);
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
__device__ __forceinline__ void LoadVector(const TensorPtrs<P, G>& t, int64_t i0, Loaded& l) {
  LoadVec8(t.g + i0, l.g);
  LoadVec8(t.m + i0, l.m);
  LoadVec8(t.v + i0, l.v);
  if (t.w) {
    LoadVec8(t.w + i0, l.w);
  } else {
    LoadVec8(t.p + i0, l.w);
  }
}

// Updates a loaded vector (elements i0 .. i0 + kVec - 1) and stores it.
template <typename P, typename G>
__device__ __forceinline__ void UpdateVector(const TensorPtrs<P, G>& t, int64_t i0, Loaded& l, const Coeffs& c,
                                             const Hyper& h) {
  float pv[kVec];
#pragma unroll
  for (int e = 0; e < kVec; ++e) pv[e] = Update(l.g[e], l.w[e], l.m[e], l.v[e], c, h);
  StoreVec8(t.m + i0, l.m);
  StoreVec8(t.v + i0, l.v);
  if (t.w) StoreVec8(t.w + i0, pv);
  StoreVec8(t.p + i0, pv);
}

// Element i alone (tails, and tensors that are not 16-byte aligned).
template <typename P, typename G>
__device__ __forceinline__ void UpdateElement(const TensorPtrs<P, G>& t, int64_t i, const Coeffs& c, const Hyper& h) {
  float mi = t.m[i], vi = t.v[i];
  float wi = t.w ? t.w[i] : dev::ToF32(t.p[i]);
  wi = Update(dev::ToF32(t.g[i]), wi, mi, vi, c, h);
  t.m[i] = mi;
  t.v[i] = vi;
  if (t.w) t.w[i] = wi;
  t.p[i] = dev::FromF32<P>(wi);
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
  if (k < nv) LoadVector(a.t, k * kVec, l);
  const Coeffs c = ComputeCoeffs(a.scalars, a.grad_sumsq, a.h.weight_decay);
  if (c.skip) return;  // overflow: leave every state as it is
  while (k < nv) {
    UpdateVector(a.t, k * kVec, l, c, a.h);
    k += stride;
    if (k < nv) LoadVector(a.t, k * kVec, l);
  }
  // The tail (a.n % kVec elements), or every element when a tensor is not 16-byte aligned.
  for (int64_t i = nv * kVec + tid; i < a.n; i += stride) UpdateElement(a.t, i, c, a.h);
}

// adamw_multi: tensors per launch (the parameter struct stays <= 4 KB) and elements per block.
constexpr int kMultiTensors = 48;
constexpr int64_t kMultiChunk = int64_t{kThreads} * kVec;  // one vector a thread

template <typename P, typename G>
struct MultiTensor {
  TensorPtrs<P, G> t;
  int64_t n;            // elements (> 0)
  int64_t first_block;  // blocks [first_block, next tensor's first_block) cover it, kMultiChunk each
  int vec;              // 1: every pointer 16-byte aligned, the vector path applies
};

template <typename P, typename G>
struct AdamWMultiArgs {
  MultiTensor<P, G> d[kMultiTensors];
  const float* scalars;     // ir::AdamWScalar layout
  const float* grad_sumsq;  // f32[]
  Hyper h;
  int count;  // descriptors used, 1..kMultiTensors
};
static_assert(sizeof(AdamWMultiArgs<float, float>) <= 4096, "adamw_multi's kernel parameter must stay <= 4 KB");

// One block per chunk of kMultiChunk elements of one tensor, one vector (or, on the scalar path,
// up to kVec elements) per thread, like adamw_fwd_kernel's one vector per thread. The block finds
// its tensor by binary search over the ascending first blocks, copies that descriptor into
// registers, issues its loads, and only then computes the coefficients, so their latencies
// overlap. The descriptors are read in place from the parameter space (__grid_constant__).
template <typename P, typename G>
__global__ void __launch_bounds__(kThreads) adamw_multi_fwd_kernel(const __grid_constant__ AdamWMultiArgs<P, G> a) {
  const int64_t block = blockIdx.x;
  int lo = 0, hi = a.count - 1;  // the last tensor whose first block is <= block
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (a.d[mid].first_block <= block) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const TensorPtrs<P, G> t = a.d[lo].t;
  const int64_t n = a.d[lo].n;
  const bool vec = a.d[lo].vec != 0;
  const int64_t begin = (block - a.d[lo].first_block) * kMultiChunk;  // a multiple of kVec, < n
  const int64_t end = begin + kMultiChunk < n ? begin + kMultiChunk : n;
  const int64_t vend = vec ? (end < n / kVec * kVec ? end : n / kVec * kVec) : begin;  // vectors: [begin, vend)
  const int64_t i0 = begin + static_cast<int64_t>(threadIdx.x) * kVec;
  const bool has_vector = i0 < vend;
  Loaded l;
  if (has_vector) LoadVector(t, i0, l);
  const Coeffs c = ComputeCoeffs(a.scalars, a.grad_sumsq, a.h.weight_decay);
  if (c.skip) return;  // overflow: leave every state as it is
  if (has_vector) UpdateVector(t, i0, l, c, a.h);
  for (int64_t i = vend + threadIdx.x; i < end; i += kThreads) UpdateElement(t, i, c, a.h);
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
  float* master = c.inputs.size() == 7 ? static_cast<float*>(c.outputs[3].data) : nullptr;
  cudaStream_t s = CudaStreamOf(c.stream);
  dev::DispatchFloat(param.dtype, [&](auto ptag) {
    using P = decltype(ptag);
    dev::DispatchFloat(grad.dtype, [&](auto gtag) {
      using G = decltype(gtag);
      AdamWArgs<P, G> a;
      a.t = {static_cast<P*>(param.data), static_cast<const G*>(grad.data), static_cast<float*>(c.outputs[1].data),
             static_cast<float*>(c.outputs[2].data), master};
      a.scalars = static_cast<const float*>(c.inputs[4].data);
      a.grad_sumsq = static_cast<const float*>(c.inputs[5].data);
      a.n = n;
      a.h = HyperOf(c.attrs);
      a.vec = a.t.Aligned();
      // One thread per vector (or per element on the scalar path), capped at 2^31 threads.
      const int64_t work = a.vec ? (n + kVec - 1) / kVec : n;
      adamw_fwd_kernel<P, G><<<dev::GridFor(work, kThreads, int64_t{1} << 23), kThreads, 0, s>>>(a);
      ZT_CUDA_CHECK(cudaGetLastError());
    });
  });
  return OkStatus();
}

Status AdamWMultiKernel(const KernelContext& c) {
  const auto l = AdamWMultiLayoutOf(c);
  const int64_t k = l.k;
  ZT_CHECK(c.inputs[l.kScalarsInput].dtype == DType::kF32 && c.inputs[l.kGradSumsqInput].dtype == DType::kF32);
  auto out = [&](int64_t input) -> const Tensor& { return c.outputs[input - ir::kAdamWMultiShift]; };
  const DType pdt = out(l.param(0)).dtype, gdt = c.inputs[l.grad(0)].dtype;
  cudaStream_t s = CudaStreamOf(c.stream);
  dev::DispatchFloat(pdt, [&](auto ptag) {
    using P = decltype(ptag);
    dev::DispatchFloat(gdt, [&](auto gtag) {
      using G = decltype(gtag);
      AdamWMultiArgs<P, G> a{};
      a.scalars = static_cast<const float*>(c.inputs[l.kScalarsInput].data);
      a.grad_sumsq = static_cast<const float*>(c.inputs[l.kGradSumsqInput].data);
      a.h = HyperOf(c.attrs);
      int64_t blocks = 0;
      auto launch = [&] {
        if (a.count > 0) {
          ZT_CHECK_LE(blocks, int64_t{0x7fffffff});
          adamw_multi_fwd_kernel<P, G><<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(a);
          ZT_CUDA_CHECK(cudaGetLastError());
        }
        a.count = 0;
        blocks = 0;
      };
      for (int64_t i = 0; i < k; ++i) {
        const Tensor& p = out(l.param(i));
        const Tensor& g = c.inputs[l.grad(i)];
        const int64_t n = p.numel();
        ZT_CHECK(p.dtype == pdt && g.dtype == gdt) << "adamw_multi: tensor " << i << " has another dtype";
        ZT_CHECK(g.numel() == n && out(l.exp_avg(i)).numel() == n && out(l.exp_avg_sq(i)).numel() == n &&
                 out(l.exp_avg(i)).dtype == DType::kF32 && out(l.exp_avg_sq(i)).dtype == DType::kF32);
        if (n == 0) continue;
        MultiTensor<P, G>& d = a.d[a.count++];
        float* w = nullptr;
        if (l.masters) {
          ZT_CHECK(out(l.master(i)).dtype == DType::kF32 && out(l.master(i)).numel() == n);
          w = static_cast<float*>(out(l.master(i)).data);
        }
        d.t = {static_cast<P*>(p.data), static_cast<const G*>(g.data), static_cast<float*>(out(l.exp_avg(i)).data),
               static_cast<float*>(out(l.exp_avg_sq(i)).data), w};
        d.n = n;
        d.first_block = blocks;
        d.vec = d.t.Aligned() ? 1 : 0;
        blocks += (n + kMultiChunk - 1) / kMultiChunk;
        if (a.count == kMultiTensors) launch();
      }
      launch();
    });
  });
  return OkStatus();
}

}  // namespace

void RegisterAdamWCudaKernels(KernelRegistry& r) {
  r.Register("adamw", DeviceKind::kCUDA, AdamWKernel);
  r.Register("adamw_multi", DeviceKind::kCUDA, AdamWMultiKernel);
}

}  // namespace zt
