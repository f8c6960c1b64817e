// CPU kernels of the activation family (semantics in ir/ops/activation.cc): elementwise, f32
// math over f32/bf16/f16 storage, finite for every finite input (sigmoid in its stable form;
// gelu' drops the sech^2 term once tanh has saturated).
#pragma once

#include "core/tensor.h"

namespace zt {
class KernelRegistry;
void RegisterActivationCpuKernels(KernelRegistry& r);

// All tensors of one shape and dtype.
void gelu_fwd(const Tensor& x, const Tensor& y);
void gelu_bwd(const Tensor& dy, const Tensor& x, const Tensor& dx);
void silu_fwd(const Tensor& x, const Tensor& y);
void silu_bwd(const Tensor& dy, const Tensor& x, const Tensor& dx);
void swiglu_fwd(const Tensor& gate, const Tensor& up, const Tensor& y);
void swiglu_bwd(const Tensor& dy, const Tensor& gate, const Tensor& up, const Tensor& dgate, const Tensor& dup);
}  // namespace zt
