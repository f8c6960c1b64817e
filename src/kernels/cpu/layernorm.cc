// PLACEHOLDER: CPU kernels of the layernorm family.
#include "kernels/cpu/layernorm.h"

namespace zt {
void RegisterLayerNormCpuKernels(KernelRegistry&) {}
}  // namespace zt
