// PLACEHOLDER: CPU kernels of the cast family.
#pragma once

namespace zt {
class KernelRegistry;
void RegisterCastCpuKernels(KernelRegistry& r);
}  // namespace zt
