// PLACEHOLDER: cast ops not yet implemented.
#include "ir/ops/cast.h"

namespace zt::ir {
void RegisterCastOps(OpRegistry&) {}
}  // namespace zt::ir
