// PLACEHOLDER: CUDA kernels of the rope family (being written).
#include "kernels/cuda/registry.h"

namespace zt {
void RegisterRopeCudaKernels(KernelRegistry&) {}
}  // namespace zt
