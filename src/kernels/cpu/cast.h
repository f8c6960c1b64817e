// CPU kernels of the cast family (semantics in ir/ops/cast.cc).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace zt {
class KernelRegistry;
void RegisterCastCpuKernels(KernelRegistry& r);

// out = x converted to out.dtype (same shape): float -> float rounds to nearest even, integer ->
// float gives the nearest value (ties to even), equal dtypes copy bytes.
void cast_fwd(const Tensor& x, const Tensor& out);

// v as f32 rounded to odd (truncated, lowest kept bit set when anything nonzero was dropped);
// exact when |v| < 2^24. Rounding this to bf16/f16 to nearest even gives the correctly rounded
// value of v (24 bits >= 11 + 2), which a plain round-to-nearest f32 step would not always do.
float IntToF32RoundOdd(int64_t v);
}  // namespace zt
