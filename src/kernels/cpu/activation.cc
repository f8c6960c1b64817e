// PLACEHOLDER: CPU kernels of the activation family.
#include "kernels/cpu/activation.h"

namespace zt {
void RegisterActivationCpuKernels(KernelRegistry&) {}
}  // namespace zt
