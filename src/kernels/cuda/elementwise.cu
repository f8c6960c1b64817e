// PLACEHOLDER: CUDA kernels of the elementwise family (being written).
#include "kernels/cuda/registry.h"

namespace zt {
void RegisterElementwiseCudaKernels(KernelRegistry&) {}
}  // namespace zt
