// PLACEHOLDER: CPU kernels of the rmsnorm family.
#pragma once

namespace zt {
class KernelRegistry;
void RegisterRmsNormCpuKernels(KernelRegistry& r);
}  // namespace zt
