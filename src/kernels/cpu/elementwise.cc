// CPU kernels: add, mul, scale, reduce_sum_to, broadcast_to.
// reduce_sum_to sums each column in double in row order (the reference); it ignores the op's
// workspace, which holds the CUDA kernel's per-chunk partials (ir::ReduceSumToChunks).
#include "kernels/cpu/elementwise.h"

#include "backend/cpu/parallel.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/kernel.h"

namespace zt {
namespace {

constexpr int64_t kGrain = 4096;

template <typename Op>
void Binary(const Tensor& x, const Tensor& y, const Tensor& out, Op op) {
  ZT_CHECK(x.dtype == y.dtype && x.dtype == out.dtype);
  ZT_CHECK(x.shape.EndsWith(y.shape) && out.shape == x.shape);
  int64_t n = x.numel();
  int64_t m = y.numel();
  DispatchFloat(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* a = static_cast<const T*>(x.data);
    const T* b = static_cast<const T*>(y.data);
    T* o = static_cast<T*>(out.data);
    ParallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) o[i] = FromF32<T>(op(ToF32(a[i]), ToF32(b[m == n ? i : i % m])));
    });
  });
}

Status AddKernel(const KernelContext& c) {
  add_fwd(c.inputs[0], c.inputs[1], c.outputs[0]);
  return OkStatus();
}
Status MulKernel(const KernelContext& c) {
  mul_fwd(c.inputs[0], c.inputs[1], c.outputs[0]);
  return OkStatus();
}
Status ScaleKernel(const KernelContext& c) {
  scale_fwd(c.inputs[0], c.attrs.GetFloat("alpha"), c.outputs[0]);
  return OkStatus();
}
Status ReduceSumToKernel(const KernelContext& c) {
  reduce_sum_to_fwd(c.inputs[0], c.outputs[0]);
  return OkStatus();
}
Status BroadcastToKernel(const KernelContext& c) {
  broadcast_to_fwd(c.inputs[0], c.outputs[0]);
  return OkStatus();
}

}  // namespace

void add_fwd(const Tensor& x, const Tensor& y, const Tensor& out) {
  Binary(x, y, out, [](float a, float b) { return a + b; });
}

void mul_fwd(const Tensor& x, const Tensor& y, const Tensor& out) {
  Binary(x, y, out, [](float a, float b) { return a * b; });
}

void scale_fwd(const Tensor& x, double alpha, const Tensor& out) {
  ZT_CHECK(x.dtype == out.dtype && x.shape == out.shape);
  float s = static_cast<float>(alpha);
  DispatchFloat(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* a = static_cast<const T*>(x.data);
    T* o = static_cast<T*>(out.data);
    ParallelFor(x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) o[i] = FromF32<T>(s * ToF32(a[i]));
    });
  });
}

void reduce_sum_to_fwd(const Tensor& x, const Tensor& out) {
  ZT_CHECK(x.dtype == out.dtype && x.shape.EndsWith(out.shape));
  int64_t m = out.numel();
  int64_t rows = m == 0 ? 0 : x.numel() / m;
  DispatchFloat(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* a = static_cast<const T*>(x.data);
    T* o = static_cast<T*>(out.data);
    ParallelFor(m, 64, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        double acc = 0;
        for (int64_t r = 0; r < rows; ++r) acc += ToF32(a[r * m + j]);
        o[j] = FromF32<T>(static_cast<float>(acc));
      }
    });
  });
}

void broadcast_to_fwd(const Tensor& x, const Tensor& out) {
  ZT_CHECK(x.dtype == out.dtype && out.shape.EndsWith(x.shape));
  int64_t m = x.numel();
  int64_t n = out.numel();
  DispatchFloat(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* a = static_cast<const T*>(x.data);
    T* o = static_cast<T*>(out.data);
    ParallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) o[i] = a[i % m];
    });
  });
}

void RegisterElementwiseCpuKernels(KernelRegistry& r) {
  r.Register("add", DeviceKind::kCPU, AddKernel);
  r.Register("mul", DeviceKind::kCPU, MulKernel);
  r.Register("scale", DeviceKind::kCPU, ScaleKernel);
  r.Register("reduce_sum_to", DeviceKind::kCPU, ReduceSumToKernel);
  r.Register("broadcast_to", DeviceKind::kCPU, BroadcastToKernel);
}

}  // namespace zt
