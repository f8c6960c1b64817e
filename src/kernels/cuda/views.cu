// PLACEHOLDER: CUDA kernels of the views family (being written).
#include "kernels/cuda/registry.h"

namespace zt {
void RegisterViewCudaKernels(KernelRegistry&) {}
}  // namespace zt
