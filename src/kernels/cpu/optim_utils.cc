// CPU kernels: sum_squares (deterministic chunked reduction), accumulate, zero.
#include "kernels/cpu/optim_utils.h"

#include <cstring>
#include <vector>

#include "backend/cpu/parallel.h"
#include "ir/ops/optim_utils.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/kernel.h"

namespace zt {

double sum_squares_fwd(std::span<const Tensor> xs, double* partials) {
  int64_t base = 0;
  for (const Tensor& x : xs) {
    int64_t n = x.numel();
    int64_t chunks = (n + ir::kSumSquaresChunk - 1) / ir::kSumSquaresChunk;
    DispatchFloat(x.dtype, [&](auto tag) {
      using T = decltype(tag);
      const T* p = static_cast<const T*>(x.data);
      ParallelFor(chunks, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
          double acc = 0;
          int64_t e = std::min(n, (c + 1) * ir::kSumSquaresChunk);
          for (int64_t i = c * ir::kSumSquaresChunk; i < e; ++i) {
            double v = ToF32(p[i]);
            acc += v * v;
          }
          partials[base + c] = acc;
        }
      });
    });
    base += chunks;
  }
  double total = 0;
  for (int64_t i = 0; i < base; ++i) total += partials[i];
  return total;
}

void accumulate_fwd(const Tensor& acc, const Tensor& x) {
  ZT_CHECK(acc.dtype == DType::kF32 && acc.shape == x.shape);
  float* a = acc.as<float>();
  DispatchFloat(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* p = static_cast<const T*>(x.data);
    ParallelFor(acc.numel(), 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) a[i] += ToF32(p[i]);
    });
  });
}

void zero_fwd(const Tensor& x) {
  if (x.nbytes()) std::memset(x.data, 0, x.nbytes());
}

namespace {
Status SumSquaresKernel(const KernelContext& c) {
  double total = sum_squares_fwd(c.inputs, static_cast<double*>(c.workspace.data));
  c.outputs[0].as<float>()[0] = static_cast<float>(total);
  return OkStatus();
}
Status AccumulateKernel(const KernelContext& c) {
  ZT_CHECK(c.outputs[0].data == c.inputs[0].data) << "accumulate must run in place";
  accumulate_fwd(c.outputs[0], c.inputs[1]);
  return OkStatus();
}
Status ZeroKernel(const KernelContext& c) {
  zero_fwd(c.outputs[0]);
  return OkStatus();
}
}  // namespace

void RegisterOptimUtilsCpuKernels(KernelRegistry& r) {
  r.Register("sum_squares", DeviceKind::kCPU, SumSquaresKernel);
  r.Register("accumulate", DeviceKind::kCPU, AccumulateKernel);
  r.Register("zero", DeviceKind::kCPU, ZeroKernel);
}

}  // namespace zt
