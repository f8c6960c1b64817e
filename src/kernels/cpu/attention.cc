// PLACEHOLDER: CPU kernels of the attention family.
#include "kernels/cpu/attention.h"

namespace zt {
void RegisterAttentionCpuKernels(KernelRegistry&) {}
}  // namespace zt
