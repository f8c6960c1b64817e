// CPU kernels of the embedding family (semantics in ir/ops/embedding.cc): a row gather and its
// deterministic scatter-add. Ids are validated as they are read: an id outside [0, V) CHECK-fails
// naming the id and V, before any memory is touched through it.
#pragma once

#include "core/tensor.h"

namespace zt {
class KernelRegistry;
void RegisterEmbeddingCpuKernels(KernelRegistry& r);

// out[p, :] = table[ids[p], :].
void embedding_fwd(const Tensor& ids,    // (...) i32|i64
                   const Tensor& table,  // (V, C)
                   const Tensor& out);   // (..., C) table's dtype
// dtable = 0; dtable[ids[p], :] += dout[p, :] in f32, each element summed in position order
// (ids are bucketed by row with a stable counting sort in the workspace, then rows are processed in
// parallel), so the result does not depend on the thread count.
void embedding_bwd(const Tensor& ids,        // (...) i32|i64
                   const Tensor& dout,       // (..., C)
                   const Tensor& dtable,     // (V, C) dout's dtype
                   const Tensor& workspace); // u8[EmbeddingBwdWorkspaceBytes(numel(ids), V)]
}  // namespace zt
