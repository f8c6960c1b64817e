// Embedding op family: embedding(ids, table) gathers rows of table [V, C] for integer ids of any
// shape [...] -> [..., C]; embedding_bwd(ids, dout){num_embeddings} scatter-adds them back into
// a [V, C] gradient. Token and position embeddings are both this op (positions come from arange).
#pragma once

#include <string>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterEmbeddingOps(OpRegistry& r);

namespace ops {
Value* Embedding(Builder& b, Value* ids, Value* table, const std::string& name = "");
}  // namespace ops
}  // namespace zt::ir
