// PLACEHOLDER: activation ops not yet implemented.
#include "ir/ops/activation.h"

namespace zt::ir {
void RegisterActivationOps(OpRegistry&) {}
}  // namespace zt::ir
