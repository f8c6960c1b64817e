// CPU kernels of the cross_entropy family (semantics in ir/ops/cross_entropy.cc). Fused: each row
// of logits is read in two passes (max, then sum of exp) and no probabilities are materialised;
// the backward recomputes softmax from the saved lse one element at a time. Only the first
// `classes` columns of a row are read (0: all V); the backward writes exact zeros after them.
// Invariant: the loss is summed in double in row order, so it does not depend on the thread count;
// a target outside [0, classes) that is not ignore_index CHECK-fails naming it (never read out of
// bounds).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace zt {
class KernelRegistry;
void RegisterCrossEntropyCpuKernels(KernelRegistry& r);

void cross_entropy_fwd(const Tensor& logits,      // (..., V) f32|bf16|f16
                       const Tensor& targets,     // (...) i32|i64
                       int64_t ignore_index,
                       int64_t classes,           // valid columns, 0 <= classes <= V; 0: V
                       const Tensor& loss,        // () f32
                       const Tensor& lse,         // (...) f32
                       const Tensor& workspace);  // u8[CrossEntropyWorkspaceBytes(rows)]
void cross_entropy_bwd(const Tensor& dloss,       // () f32
                       const Tensor& logits,      // (..., V)
                       const Tensor& targets,     // (...) i32|i64
                       const Tensor& lse,         // (...) f32
                       int64_t ignore_index,
                       int64_t classes,           // as in cross_entropy_fwd
                       const Tensor& dlogits);    // (..., V) logits' dtype
}  // namespace zt
