// CPU kernels of the views family (semantics in ir/ops/views.cc).
#pragma once

#include "core/tensor.h"

namespace zt {
class KernelRegistry;
void RegisterViewCpuKernels(KernelRegistry& r);

// out aliases x when planned; copies only if the executor gave distinct memory.
void reshape_fwd(const Tensor& x, const Tensor& out);
}  // namespace zt
