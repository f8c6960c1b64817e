// PLACEHOLDER: CPU kernels of the activation family.
#pragma once

namespace zt {
class KernelRegistry;
void RegisterActivationCpuKernels(KernelRegistry& r);
}  // namespace zt
