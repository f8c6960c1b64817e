// PLACEHOLDER: CUDA kernels of the constant family (being written).
#include "kernels/cuda/registry.h"

namespace zt {
void RegisterConstantCudaKernels(KernelRegistry&) {}
}  // namespace zt
