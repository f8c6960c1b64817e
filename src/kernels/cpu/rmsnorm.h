// CPU kernels of the rmsnorm family (semantics in ir/ops/rmsnorm.cc). Compute in f32 over
// f32/bf16/f16 storage; the row mean of squares and the dw reduction accumulate in f64. Results
// never depend on the thread count: rows are independent, and dw sums fixed row chunks (a
// function of the row count only) into workspace partials that are combined in chunk order.
#pragma once

#include "core/tensor.h"

namespace zt {
class KernelRegistry;
void RegisterRmsNormCpuKernels(KernelRegistry& r);

// x (..., C); w (C); y (..., C) x's dtype; rstd (...) f32.
void rmsnorm_fwd(const Tensor& x, const Tensor& w, double eps, const Tensor& y, const Tensor& rstd);
// a, b, sum (..., C): sum = add(a, b), then rmsnorm_fwd(sum, w, ...) bit for bit.
void add_rmsnorm_fwd(const Tensor& a, const Tensor& b, const Tensor& w, double eps, const Tensor& sum,
                     const Tensor& y, const Tensor& rstd);
// dy, x (..., C); w (C); rstd (...) f32; dx (..., C); dw (C). workspace: at least
// ir::RmsNormBwdWorkspaceBytes(rows, C) bytes. dresidual (optional, dx's type): dx becomes
// add(dx, dresidual) bit for bit.
void rmsnorm_bwd(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd, const Tensor& dx,
                 const Tensor& dw, const Tensor& workspace, const Tensor* dresidual = nullptr);
}  // namespace zt
