// CPU kernels of the views family (semantics in ir/ops/views.cc). transpose, split and concat
// move bytes (element size from the dtype), so they run for every dtype and are exact.
#pragma once

#include <cstdint>
#include <span>

#include "core/tensor.h"

namespace zt {
class KernelRegistry;
void RegisterViewCpuKernels(KernelRegistry& r);

// out aliases x when planned; copies only if the executor gave distinct memory.
void reshape_fwd(const Tensor& x, const Tensor& out);
// out.shape[j] = x.shape[perm[j]]; perm is a permutation of 0..rank-1 (rank <= kMaxTransposeRank).
void transpose_fwd(const Tensor& x, std::span<const int64_t> perm, const Tensor& out);
// outs[i] = x's slab along `axis` (0 <= axis < rank) at offset sum(outs[<i].shape[axis]).
void split_fwd(const Tensor& x, int axis, std::span<const Tensor> outs);
// out = xs joined along `axis` (0 <= axis < rank); the adjoint of split_fwd.
void concat_fwd(std::span<const Tensor> xs, int axis, const Tensor& out);
}  // namespace zt
