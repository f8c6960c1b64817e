// adamw_multi's layout (ir::AdamWMultiLayout) read from a kernel's context, shared by the CPU and
// CUDA kernels. Invariant: it CHECKs the input and output counts and that every output is in place
// over its input, so a kernel that got the layout may write through the outputs.
#pragma once

#include "ir/ops/adamw.h"
#include "kernels/kernel.h"

namespace zt {

ir::AdamWMultiLayout AdamWMultiLayoutOf(const KernelContext& c);

}  // namespace zt
