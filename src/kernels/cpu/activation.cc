// CPU kernels: gelu, gelu_bwd, silu, silu_bwd, swiglu, swiglu_bwd. Elementwise in f32; finite
// for every finite input: the sigmoid never evaluates exp of a positive argument, and gelu' skips
// the sech^2 term once tanh has saturated (where it is 0 but its factor x^3 may overflow).
#include "kernels/cpu/activation.h"

#include <cmath>

#include "backend/cpu/parallel.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/kernel.h"

namespace zt {
namespace {

constexpr int64_t kGrain = 4096;
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluC = 0.044715f;

inline float Sigmoid(float x) {
  if (x >= 0) return 1.0f / (1.0f + std::exp(-x));
  float e = std::exp(x);
  return e / (1.0f + e);
}

inline float GeluF(float x) {
  float t = std::tanh(kSqrt2OverPi * (x + kGeluC * x * x * x));
  return 0.5f * x * (1.0f + t);
}

inline float GeluGrad(float x) {
  float x2 = x * x;
  float t = std::tanh(kSqrt2OverPi * (x + kGeluC * x2 * x));
  float sech2 = 1.0f - t * t;
  float d = 0.5f * (1.0f + t);
  if (sech2 != 0.0f) d += 0.5f * x * sech2 * kSqrt2OverPi * (1.0f + 3.0f * kGeluC * x2);
  return d;
}

inline float SiluF(float x) { return x * Sigmoid(x); }

inline float SiluGrad(float x) {
  float s = Sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}

// out[i] = f(in0[i], ...) over tensors of one shape and dtype.
template <typename F>
void Map1(const Tensor& x, const Tensor& y, F f) {
  ZT_CHECK(x.dtype == y.dtype && x.shape == y.shape);
  DispatchFloat(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* a = static_cast<const T*>(x.data);
    T* o = static_cast<T*>(y.data);
    ParallelFor(x.numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) o[i] = FromF32<T>(f(ToF32(a[i])));
    });
  });
}

template <typename F>
void Map2(const Tensor& x0, const Tensor& x1, const Tensor& y, F f) {
  ZT_CHECK(x0.dtype == y.dtype && x0.shape == y.shape && x1.dtype == y.dtype && x1.shape == y.shape);
  DispatchFloat(y.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* a = static_cast<const T*>(x0.data);
    const T* b = static_cast<const T*>(x1.data);
    T* o = static_cast<T*>(y.data);
    ParallelFor(y.numel(), kGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) o[i] = FromF32<T>(f(ToF32(a[i]), ToF32(b[i])));
    });
  });
}

Status GeluKernel(const KernelContext& k) {
  gelu_fwd(k.inputs[0], k.outputs[0]);
  return OkStatus();
}
Status GeluBwdKernel(const KernelContext& k) {
  gelu_bwd(k.inputs[0], k.inputs[1], k.outputs[0]);
  return OkStatus();
}
Status SiluKernel(const KernelContext& k) {
  silu_fwd(k.inputs[0], k.outputs[0]);
  return OkStatus();
}
Status SiluBwdKernel(const KernelContext& k) {
  silu_bwd(k.inputs[0], k.inputs[1], k.outputs[0]);
  return OkStatus();
}
Status SwiGluKernel(const KernelContext& k) {
  swiglu_fwd(k.inputs[0], k.inputs[1], k.outputs[0]);
  return OkStatus();
}
Status SwiGluBwdKernel(const KernelContext& k) {
  swiglu_bwd(k.inputs[0], k.inputs[1], k.inputs[2], k.outputs[0], k.outputs[1]);
  return OkStatus();
}

}  // namespace

void gelu_fwd(const Tensor& x, const Tensor& y) { Map1(x, y, GeluF); }

void gelu_bwd(const Tensor& dy, const Tensor& x, const Tensor& dx) {
  Map2(dy, x, dx, [](float d, float v) { return d * GeluGrad(v); });
}

void silu_fwd(const Tensor& x, const Tensor& y) { Map1(x, y, SiluF); }

void silu_bwd(const Tensor& dy, const Tensor& x, const Tensor& dx) {
  Map2(dy, x, dx, [](float d, float v) { return d * SiluGrad(v); });
}

void swiglu_fwd(const Tensor& gate, const Tensor& up, const Tensor& y) {
  Map2(gate, up, y, [](float g, float u) { return SiluF(g) * u; });
}

void swiglu_bwd(const Tensor& dy, const Tensor& gate, const Tensor& up, const Tensor& dgate, const Tensor& dup) {
  ZT_CHECK(dy.dtype == gate.dtype && dy.dtype == up.dtype && dy.dtype == dgate.dtype && dy.dtype == dup.dtype);
  ZT_CHECK(dy.shape == gate.shape && dy.shape == up.shape && dy.shape == dgate.shape && dy.shape == dup.shape);
  DispatchFloat(dy.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = static_cast<const T*>(dy.data);
    const T* pg = static_cast<const T*>(gate.data);
    const T* pu = static_cast<const T*>(up.data);
    T* pdg = static_cast<T*>(dgate.data);
    T* pdu = static_cast<T*>(dup.data);
    ParallelFor(dy.numel(), kGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        float d = ToF32(pdy[i]), g = ToF32(pg[i]), u = ToF32(pu[i]);
        float s = Sigmoid(g);
        pdg[i] = FromF32<T>(d * u * (s * (1.0f + g * (1.0f - s))));
        pdu[i] = FromF32<T>(d * (g * s));
      }
    });
  });
}

void RegisterActivationCpuKernels(KernelRegistry& r) {
  r.Register("gelu", DeviceKind::kCPU, GeluKernel);
  r.Register("gelu_bwd", DeviceKind::kCPU, GeluBwdKernel);
  r.Register("silu", DeviceKind::kCPU, SiluKernel);
  r.Register("silu_bwd", DeviceKind::kCPU, SiluBwdKernel);
  r.Register("swiglu", DeviceKind::kCPU, SwiGluKernel);
  r.Register("swiglu_bwd", DeviceKind::kCPU, SwiGluBwdKernel);
}

}  // namespace zt
