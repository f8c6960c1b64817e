// PLACEHOLDER: embedding ops not yet implemented.
#include "ir/ops/embedding.h"

namespace zt::ir {
void RegisterEmbeddingOps(OpRegistry&) {}
}  // namespace zt::ir
