// PLACEHOLDER: CPU kernels of the layernorm family.
#pragma once

namespace zt {
class KernelRegistry;
void RegisterLayerNormCpuKernels(KernelRegistry& r);
}  // namespace zt
