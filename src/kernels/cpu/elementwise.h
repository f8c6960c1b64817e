// CPU kernels of the elementwise family (see ir/ops/elementwise.cc for the semantics).
// All compute in f32 over f32/bf16/f16 storage; reductions accumulate in double.
#pragma once

#include "core/tensor.h"

namespace zt {
class KernelRegistry;
void RegisterElementwiseCpuKernels(KernelRegistry& r);

void add_fwd(const Tensor& x, const Tensor& y, const Tensor& out);    // out (= x's shape)
void mul_fwd(const Tensor& x, const Tensor& y, const Tensor& out);
void scale_fwd(const Tensor& x, double alpha, const Tensor& out);
void reduce_sum_to_fwd(const Tensor& x, const Tensor& out);           // out: suffix of x
void broadcast_to_fwd(const Tensor& x, const Tensor& out);            // x: suffix of out
}  // namespace zt
