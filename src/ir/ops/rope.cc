// PLACEHOLDER: rope ops not yet implemented.
#include "ir/ops/rope.h"

namespace zt::ir {
void RegisterRopeOps(OpRegistry&) {}
}  // namespace zt::ir
