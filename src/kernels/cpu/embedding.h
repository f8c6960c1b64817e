// PLACEHOLDER: CPU kernels of the embedding family.
#pragma once

namespace zt {
class KernelRegistry;
void RegisterEmbeddingCpuKernels(KernelRegistry& r);
}  // namespace zt
