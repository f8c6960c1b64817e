// PLACEHOLDER: CUDA kernels of the embedding family (being written).
#include "kernels/cuda/registry.h"

namespace zt {
void RegisterEmbeddingCudaKernels(KernelRegistry&) {}
}  // namespace zt
