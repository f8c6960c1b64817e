// CPU kernels of the optimizer utility ops (semantics in ir/ops/optim_utils.h).
#pragma once

#include <span>

#include "core/tensor.h"

namespace zt {
class KernelRegistry;
void RegisterOptimUtilsCpuKernels(KernelRegistry& r);

// Returns the sum of squares in double; `partials` holds ir::SumSquaresPartials doubles.
double sum_squares_fwd(std::span<const Tensor> xs, double* partials);
void accumulate_fwd(const Tensor& acc, const Tensor& x);  // acc += x (acc f32)
void zero_fwd(const Tensor& x);
}  // namespace zt
