// CPU kernel of matmul (semantics in ir/ops/matmul.cc): OpenBLAS sgemm in f32; bf16/f16 operands
// are converted to f32 in the workspace on the way in and the result converted on the way out.
#pragma once

#include "core/tensor.h"

namespace zt {
class KernelRegistry;
void RegisterMatmulCpuKernels(KernelRegistry& r);

// bias may have data == nullptr (no bias). workspace: see the op's workspace rule.
void matmul_fwd(const Tensor& a, const Tensor& b, const Tensor& bias, bool trans_a, bool trans_b,
                const Tensor& out, const Tensor& workspace);
}  // namespace zt
