// PLACEHOLDER: CPU kernels of the cross_entropy family.
#include "kernels/cpu/cross_entropy.h"

namespace zt {
void RegisterCrossEntropyCpuKernels(KernelRegistry&) {}
}  // namespace zt
