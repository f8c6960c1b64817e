// PLACEHOLDER: CPU kernels of the rope family.
#include "kernels/cpu/rope.h"

namespace zt {
void RegisterRopeCpuKernels(KernelRegistry&) {}
}  // namespace zt
