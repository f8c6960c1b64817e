// CPU kernels of the rope family (semantics in ir/ops/rope.cc): compute in f32 over
// f32/bf16/f16 storage, with cos/sin tables built in the workspace the HF (f32) way.
#pragma once

#include "core/tensor.h"

namespace zt {
class KernelRegistry;
void RegisterRopeCpuKernels(KernelRegistry& r);

// x, out: (B, T, H, D), same dtype; out may equal x. workspace: see the op's workspace rule
// (two f32 tables of T x D/2, each padded to the memory alignment).
void rope_fwd(const Tensor& x, double theta, bool inverse, const Tensor& out, const Tensor& workspace);
}  // namespace zt
