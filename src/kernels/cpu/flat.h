// CPU kernels of the flat-buffer ops (semantics in ir/ops/flat.h).
#pragma once

#include <span>

#include "core/tensor.h"

namespace zt {
class KernelRegistry;
void RegisterFlatCpuKernels(KernelRegistry& r);

void pack_fwd(std::span<const Tensor> xs, const Tensor& flat);
void unpack_into_fwd(const Tensor& flat, std::span<const Tensor> targets);
}  // namespace zt
