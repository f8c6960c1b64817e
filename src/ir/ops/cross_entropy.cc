// PLACEHOLDER: cross_entropy ops not yet implemented.
#include "ir/ops/cross_entropy.h"

namespace zt::ir {
void RegisterCrossEntropyOps(OpRegistry&) {}
}  // namespace zt::ir
