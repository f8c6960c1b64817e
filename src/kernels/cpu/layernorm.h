// CPU kernels of the layernorm family (semantics in ir/ops/layernorm.cc). Compute in f32 over
// f32/bf16/f16 storage; row statistics and the dw/db reductions accumulate in f64. Results never
// depend on the thread count: rows are independent, and dw/db sum fixed row chunks (a function of
// the row count only) into workspace partials that are combined in chunk order.
#pragma once

#include "core/tensor.h"

namespace zt {
class KernelRegistry;
void RegisterLayerNormCpuKernels(KernelRegistry& r);

// x (..., C); w, b (C); y (..., C) x's dtype; mean, rstd (...) f32.
void layernorm_fwd(const Tensor& x, const Tensor& w, const Tensor& b, double eps, const Tensor& y,
                   const Tensor& mean, const Tensor& rstd);
// a, b, sum (..., C): sum = add(a, b), then layernorm_fwd(sum, w, bias, ...) bit for bit.
void add_layernorm_fwd(const Tensor& a, const Tensor& b, const Tensor& w, const Tensor& bias, double eps,
                       const Tensor& sum, const Tensor& y, const Tensor& mean, const Tensor& rstd);
// dy, x (..., C); w (C); mean, rstd (...) f32; dx (..., C); dw, db (C). workspace: at least
// ir::LayerNormBwdWorkspaceBytes(rows, C) bytes. dresidual (optional, dx's type): dx becomes
// add(dx, dresidual) bit for bit.
void layernorm_bwd(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                   const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& workspace,
                   const Tensor* dresidual = nullptr);
}  // namespace zt
