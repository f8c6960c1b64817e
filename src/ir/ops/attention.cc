// PLACEHOLDER: attention ops not yet implemented.
#include "ir/ops/attention.h"

namespace zt::ir {
void RegisterAttentionOps(OpRegistry&) {}
}  // namespace zt::ir
