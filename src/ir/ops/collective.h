// Collective op family (inserted by the data-parallel and ZeRO passes; they run on the comm
// stream through the executor's Communicator):
//   all_gather(x [S]){world_size} -> [world_size * S]: the ranks' x, concatenated in rank order;
//   reduce_scatter(x [world_size * S]){world_size, op} -> [S]: this rank's slice of the reduction;
//   all_reduce(x){op} -> x's type: the reduction over ranks.
// op is "sum" or "avg". The graph is identical on every rank (SPMD); the rank is known only when
// the kernels run.
#pragma once

#include <string>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterCollectiveOps(OpRegistry& r);

namespace ops {
Value* AllGather(Builder& b, Value* x, int64_t world_size, const std::string& name = "");
Value* ReduceScatter(Builder& b, Value* x, int64_t world_size, const std::string& op, const std::string& name = "");
Value* AllReduce(Builder& b, Value* x, const std::string& op, const std::string& name = "");
}  // namespace ops

bool IsCollective(const OpDef& op);
}  // namespace zt::ir
