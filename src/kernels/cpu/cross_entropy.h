// PLACEHOLDER: CPU kernels of the cross_entropy family.
#pragma once

namespace zt {
class KernelRegistry;
void RegisterCrossEntropyCpuKernels(KernelRegistry& r);
}  // namespace zt
