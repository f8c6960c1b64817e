// PLACEHOLDER: CPU kernels of the embedding family.
#include "kernels/cpu/embedding.h"

namespace zt {
void RegisterEmbeddingCpuKernels(KernelRegistry&) {}
}  // namespace zt
