// PLACEHOLDER: CPU kernels of the attention family.
#pragma once

namespace zt {
class KernelRegistry;
void RegisterAttentionCpuKernels(KernelRegistry& r);
}  // namespace zt
