// CPU kernels of the matmul epilogue family (semantics in ir/ops/matmul_epilogue.cc): each calls
// the unfused kernels it stands for (matmul_fwd, then gelu_fwd, gelu_bwd or reduce_sum_to_fwd) on
// the same memory, so a fused step is bit-identical to the unfused one.
#pragma once

namespace zt {
class KernelRegistry;
void RegisterMatmulEpilogueCpuKernels(KernelRegistry& r);
}  // namespace zt
