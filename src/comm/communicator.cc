// Shared helpers of the Communicator interface.
#include "comm/communicator.h"

namespace zt::comm {

const char* ReduceOpName(ReduceOp op) { return op == ReduceOp::kSum ? "sum" : "avg"; }

}  // namespace zt::comm
