// CPU kernels of the attention family (semantics in ir/ops/attention.cc): a naive O(T*S) loop per
// (batch, head), computing in f32/f64 over f32/bf16/f16 storage.
#pragma once

#include "core/tensor.h"

namespace zt {
class KernelRegistry;
void RegisterAttentionCpuKernels(KernelRegistry& r);

// q: (B, T, H, D), k, v: (B, S, Hkv, D), out: (B, T, H, D) in q's dtype, lse: f32 (B, H, T).
// scale 0 means 1/sqrt(D). workspace: see the op's workspace rule.
void attention_fwd(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double scale,
                   const Tensor& out, const Tensor& lse, const Tensor& workspace);

// dout, out: (B, T, H, D); lse: f32 (B, H, T); dlse: f32 (B, H, T) or data == nullptr (none).
// dq: (B, T, H, D), dk, dv: (B, S, Hkv, D). Deterministic: each (b, kv head) is one work item that
// accumulates dk/dv over its query heads and positions in a fixed order.
void attention_bwd(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                   const Tensor& lse, const Tensor& dlse, bool causal, double scale, const Tensor& dq,
                   const Tensor& dk, const Tensor& dv, const Tensor& workspace);
}  // namespace zt
