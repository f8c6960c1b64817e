// PLACEHOLDER: CPU kernels of the cast family.
#include "kernels/cpu/cast.h"

namespace zt {
void RegisterCastCpuKernels(KernelRegistry&) {}
}  // namespace zt
