// PLACEHOLDER: CPU kernels of the rope family.
#pragma once

namespace zt {
class KernelRegistry;
void RegisterRopeCpuKernels(KernelRegistry& r);
}  // namespace zt
