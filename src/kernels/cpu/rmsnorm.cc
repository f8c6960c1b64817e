// PLACEHOLDER: CPU kernels of the rmsnorm family.
#include "kernels/cpu/rmsnorm.h"

namespace zt {
void RegisterRmsNormCpuKernels(KernelRegistry&) {}
}  // namespace zt
