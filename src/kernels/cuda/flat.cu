// PLACEHOLDER: CUDA kernels of the flat family (being written).
#include "kernels/cuda/registry.h"

namespace zt {
void RegisterFlatCudaKernels(KernelRegistry&) {}
}  // namespace zt
