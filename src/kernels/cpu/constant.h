// CPU kernels of the constant family: fill and arange.
#pragma once

#include "core/tensor.h"

namespace zt {
class KernelRegistry;
void RegisterConstantCpuKernels(KernelRegistry& r);

void fill_fwd(double value, const Tensor& out);
void arange_fwd(const Tensor& out);
}  // namespace zt
