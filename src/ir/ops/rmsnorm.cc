// PLACEHOLDER: rmsnorm ops not yet implemented.
#include "ir/ops/rmsnorm.h"

namespace zt::ir {
void RegisterRmsNormOps(OpRegistry&) {}
}  // namespace zt::ir
