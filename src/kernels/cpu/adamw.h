// CPU kernels of adamw and adamw_multi (semantics in ir/ops/adamw.cc), element-wise in f32, in place.
#pragma once

#include "core/tensor.h"

namespace zt {
class KernelRegistry;
void RegisterAdamWCpuKernels(KernelRegistry& r);

struct AdamWHyper {
  double beta1, beta2, eps, weight_decay;
};
// param, exp_avg, exp_avg_sq (and master, when master.data != nullptr) are updated in place;
// scalars as ir::AdamWScalar; grad_sumsq the global sum of squares of the stored gradients.
void adamw_fwd(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
               const float* scalars, float grad_sumsq, const Tensor& master, const AdamWHyper& h);
}  // namespace zt
