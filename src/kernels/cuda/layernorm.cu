// CUDA kernels: layernorm, add_layernorm, layernorm_bwd (semantics in ir/ops/layernorm.cc,
// reference in kernels/cpu/layernorm.cc). One fused kernel per direction (layernorm.cuh): the
// forward writes y, mean and rstd (f32) reading x once (add_layernorm: reading a and b once and
// writing their sum too); the backward writes dx (plus dresidual when given) and per-block dw/db
// partials in the op's workspace reading dy and x once, then a fixed-order reduction gives dw, db.
// Invariant: results are bit-identical run to run (no atomics; every sum in a fixed order), and
// each fused form is bit-identical to the unfused kernel followed by the `add` kernel.
#include <cuda_runtime.h>

#include "backend/cuda/cuda_backend.h"
#include "ir/ops/layernorm.h"
#include "kernels/cuda/layernorm.cuh"
#include "kernels/cuda/registry.h"
#include "kernels/kernel.h"

namespace zt {
namespace {

// Checks the shapes a layernorm node guarantees; returns C.
int64_t CheckRows(const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd) {
  ZT_CHECK(x.shape.rank() >= 1) << "layernorm: x must have rank >= 1";
  int64_t c = x.shape[-1];
  ZT_CHECK(c > 0 && c <= 0x7fffffff) << "layernorm: last dim " << c;
  int64_t rows = x.numel() / c;
  ZT_CHECK(w.dtype == x.dtype && w.shape == Shape{c}) << "layernorm: w " << w.shape << " vs x " << x.shape;
  ZT_CHECK(mean.dtype == DType::kF32 && mean.numel() == rows && rstd.dtype == DType::kF32 && rstd.numel() == rows)
      << "layernorm: statistics must be f32 with one value per row";
  return c;
}

// layernorm (x, w, b) -> (y, mean, rstd), or add_layernorm (a, b, w, bias) -> (sum, y, mean, rstd).
Status LayerNormFwd(const KernelContext& k, bool residual) {
  const int in0 = residual ? 1 : 0, out0 = residual ? 1 : 0;  // where the unfused op's lists start
  const Tensor &x = k.inputs[0], &w = k.inputs[in0 + 1], &b = k.inputs[in0 + 2];
  const Tensor &y = k.outputs[out0], &mean = k.outputs[out0 + 1], &rstd = k.outputs[out0 + 2];
  int64_t c = CheckRows(x, w, mean, rstd);
  ZT_CHECK(b.dtype == x.dtype && b.shape == Shape{c} && y.dtype == x.dtype && y.shape == x.shape);
  norm_cuda::FwdArgs a{x.data, w.data, b.data, k.attrs.GetFloat("eps"), y.data, mean.as<float>(), rstd.as<float>(),
                       x.numel() / c, static_cast<int>(c)};
  if (residual) {
    const Tensor &addend = k.inputs[1], &sum = k.outputs[0];
    ZT_CHECK(addend.dtype == x.dtype && addend.shape == x.shape && sum.dtype == x.dtype && sum.shape == x.shape);
    a.residual = addend.data;
    a.sum = sum.data;
  }
  norm_cuda::NormFwd<true>(x.dtype, a, CudaStreamOf(k.stream));
  return OkStatus();
}

Status LayerNormKernel(const KernelContext& k) { return LayerNormFwd(k, false); }
Status AddLayerNormKernel(const KernelContext& k) { return LayerNormFwd(k, true); }

Status LayerNormBwdKernel(const KernelContext& k) {
  const Tensor &dy = k.inputs[0], &x = k.inputs[1], &w = k.inputs[2], &mean = k.inputs[3], &rstd = k.inputs[4];
  const Tensor &dx = k.outputs[0], &dw = k.outputs[1], &db = k.outputs[2];
  int64_t c = CheckRows(x, w, mean, rstd);
  ZT_CHECK(dy.dtype == x.dtype && dy.shape == x.shape && dx.dtype == x.dtype && dx.shape == x.shape);
  ZT_CHECK(dw.dtype == w.dtype && dw.shape == w.shape && db.dtype == w.dtype && db.shape == w.shape);
  int64_t rows = x.numel() / c;
  // The op's workspace (ir::LayerNormBwdWorkspaceBytes: chunks x C x 2 doubles) holds up to
  // 2 * chunks f32 slots of (dw, db) partials; the CUDA kernel uses at most that many.
  norm_cuda::BwdArgs a{dy.data,  x.data,          w.data,         mean.as<float>(), rstd.as<float>(),
                       dx.data,  dw.data,         db.data,        rows,             static_cast<int>(c),
                       k.workspace.data, k.workspace.nbytes(), ir::LayerNormBwdChunks(rows)};
  if (k.inputs.size() == 6) {  // dresidual: dx = add(dx, dresidual)
    const Tensor& dres = k.inputs[5];
    ZT_CHECK(dres.dtype == x.dtype && dres.shape == x.shape) << "layernorm_bwd: dresidual " << dres.shape;
    a.dresidual = dres.data;
  }
  norm_cuda::NormBwd<true>(x.dtype, a, CudaStreamOf(k.stream));
  return OkStatus();
}

}  // namespace

void RegisterLayerNormCudaKernels(KernelRegistry& r) {
  r.Register("layernorm", DeviceKind::kCUDA, LayerNormKernel);
  r.Register("add_layernorm", DeviceKind::kCUDA, AddLayerNormKernel);
  r.Register("layernorm_bwd", DeviceKind::kCUDA, LayerNormBwdKernel);
}

}  // namespace zt
