// CPU kernel of adamw (semantics in ir/ops/adamw.cc), element-wise in f32, in place.
#pragma once

#include "core/tensor.h"

namespace zt {
class KernelRegistry;
void RegisterAdamWCpuKernels(KernelRegistry& r);

struct AdamWHyper {
  double beta1, beta2, eps, weight_decay;
};
// param, exp_avg, exp_avg_sq are updated in place; scalars as ir::AdamWScalar.
void adamw_fwd(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
               const float* scalars, const AdamWHyper& h);
}  // namespace zt
