// PLACEHOLDER: CUDA kernels of the collective family (being written).
#include "kernels/cuda/registry.h"

namespace zt {
void RegisterCollectiveCudaKernels(KernelRegistry&) {}
}  // namespace zt
