// Embedding op family: embedding(ids, table) gathers rows of table [V, C] for integer ids of any
// shape [...] -> [..., C]; embedding_bwd(ids, dout){num_embeddings} scatter-adds them back into
// a [V, C] gradient. Token and position embeddings are both this op (positions come from arange).
#pragma once

#include <string>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterEmbeddingOps(OpRegistry& r);

// Workspace of embedding_bwd (its op's rule; the CPU kernel lays it out the same way):
// int64 row offsets [num_embeddings + 1] then int64 positions [num_ids] (ids sorted by row,
// stably), each aligned.
size_t EmbeddingBwdWorkspaceBytes(int64_t num_ids, int64_t num_embeddings);

namespace ops {
Value* Embedding(Builder& b, Value* ids, Value* table, const std::string& name = "");
// d table [num_embeddings, C] from ids [...] and dout [..., C]: zeros, then dout's rows added at
// their ids (the backward of Embedding; emitted by its backward rule).
Value* EmbeddingBwd(Builder& b, Value* ids, Value* dout, int64_t num_embeddings,
                    const std::string& name = "");
}  // namespace ops
}  // namespace zt::ir
