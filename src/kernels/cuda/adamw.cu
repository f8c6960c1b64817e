// PLACEHOLDER: CUDA kernels of the adamw family (being written).
#include "kernels/cuda/registry.h"

namespace zt {
void RegisterAdamWCudaKernels(KernelRegistry&) {}
}  // namespace zt
