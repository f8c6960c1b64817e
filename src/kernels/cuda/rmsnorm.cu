// CUDA kernels: rmsnorm, add_rmsnorm, rmsnorm_bwd (semantics in ir/ops/rmsnorm.cc, reference in
// kernels/cpu/rmsnorm.cc). The row-normalization kernels of layernorm.cuh without centering or
// bias: the forward writes y and rstd (f32) reading x once (add_rmsnorm: reading a and b once and
// writing their sum too); the backward writes dx (plus dresidual when given) and per-block dw
// partials in the op's workspace reading dy and x once, then a fixed-order reduction gives dw.
// Invariant: results are bit-identical run to run (no atomics; every sum in a fixed order), and
// each fused form is bit-identical to the unfused kernel followed by the `add` kernel.
#include <cuda_runtime.h>

#include "backend/cuda/cuda_backend.h"
#include "ir/ops/rmsnorm.h"
#include "kernels/cuda/layernorm.cuh"
#include "kernels/cuda/registry.h"
#include "kernels/kernel.h"

namespace zt {
namespace {

// Checks the shapes an rmsnorm node guarantees; returns C.
int64_t CheckRows(const Tensor& x, const Tensor& w, const Tensor& rstd) {
  ZT_CHECK(x.shape.rank() >= 1) << "rmsnorm: x must have rank >= 1";
  int64_t c = x.shape[-1];
  ZT_CHECK(c > 0 && c <= 0x7fffffff) << "rmsnorm: last dim " << c;
  ZT_CHECK(w.dtype == x.dtype && w.shape == Shape{c}) << "rmsnorm: w " << w.shape << " vs x " << x.shape;
  ZT_CHECK(rstd.dtype == DType::kF32 && rstd.numel() == x.numel() / c) << "rmsnorm: rstd must be f32, one per row";
  return c;
}

// rmsnorm (x, w) -> (y, rstd), or add_rmsnorm (a, b, w) -> (sum, y, rstd).
Status RmsNormFwd(const KernelContext& k, bool residual) {
  const int in0 = residual ? 1 : 0, out0 = residual ? 1 : 0;  // where the unfused op's lists start
  const Tensor &x = k.inputs[0], &w = k.inputs[in0 + 1];
  const Tensor &y = k.outputs[out0], &rstd = k.outputs[out0 + 1];
  int64_t c = CheckRows(x, w, rstd);
  ZT_CHECK(y.dtype == x.dtype && y.shape == x.shape);
  norm_cuda::FwdArgs a{x.data, w.data, nullptr, k.attrs.GetFloat("eps"), y.data, nullptr, rstd.as<float>(),
                       x.numel() / c, static_cast<int>(c)};
  if (residual) {
    const Tensor &addend = k.inputs[1], &sum = k.outputs[0];
    ZT_CHECK(addend.dtype == x.dtype && addend.shape == x.shape && sum.dtype == x.dtype && sum.shape == x.shape);
    a.residual = addend.data;
    a.sum = sum.data;
  }
  norm_cuda::NormFwd<false>(x.dtype, a, CudaStreamOf(k.stream));
  return OkStatus();
}

Status RmsNormKernel(const KernelContext& k) { return RmsNormFwd(k, false); }
Status AddRmsNormKernel(const KernelContext& k) { return RmsNormFwd(k, true); }

Status RmsNormBwdKernel(const KernelContext& k) {
  const Tensor &dy = k.inputs[0], &x = k.inputs[1], &w = k.inputs[2], &rstd = k.inputs[3];
  const Tensor &dx = k.outputs[0], &dw = k.outputs[1];
  int64_t c = CheckRows(x, w, rstd);
  ZT_CHECK(dy.dtype == x.dtype && dy.shape == x.shape && dx.dtype == x.dtype && dx.shape == x.shape);
  ZT_CHECK(dw.dtype == w.dtype && dw.shape == w.shape);
  int64_t rows = x.numel() / c;
  // The op's workspace (ir::RmsNormBwdWorkspaceBytes: chunks x C doubles) holds up to 2 * chunks
  // f32 slots of dw partials; the CUDA kernel uses at most that many.
  norm_cuda::BwdArgs a{dy.data, x.data,  w.data, nullptr, rstd.as<float>(), dx.data, dw.data, nullptr, rows,
                       static_cast<int>(c), k.workspace.data, k.workspace.nbytes(), ir::RmsNormBwdChunks(rows)};
  if (k.inputs.size() == 5) {  // dresidual: dx = add(dx, dresidual)
    const Tensor& dres = k.inputs[4];
    ZT_CHECK(dres.dtype == x.dtype && dres.shape == x.shape) << "rmsnorm_bwd: dresidual " << dres.shape;
    a.dresidual = dres.data;
  }
  norm_cuda::NormBwd<false>(x.dtype, a, CudaStreamOf(k.stream));
  return OkStatus();
}

}  // namespace

void RegisterRmsNormCudaKernels(KernelRegistry& r) {
  r.Register("rmsnorm", DeviceKind::kCUDA, RmsNormKernel);
  r.Register("add_rmsnorm", DeviceKind::kCUDA, AddRmsNormKernel);
  r.Register("rmsnorm_bwd", DeviceKind::kCUDA, RmsNormBwdKernel);
}

}  // namespace zt
