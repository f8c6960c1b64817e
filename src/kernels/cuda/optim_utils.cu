// PLACEHOLDER: CUDA kernels of the optim_utils family (being written).
#include "kernels/cuda/registry.h"

namespace zt {
void RegisterOptimUtilsCudaKernels(KernelRegistry&) {}
}  // namespace zt
