// Cross-entropy op family: cross_entropy(logits [..., V], targets i32/i64 [...]){ignore_index}
//   -> (loss f32[] = mean over targets != ignore_index of -log softmax(logits)[target],
//       lse f32 [...] saved for the backward); 0 when every target is ignored.
//   cross_entropy_bwd(dloss, logits, targets, lse){ignore_index} -> dlogits (softmax - onehot,
//   scaled by dloss / count; zero rows for ignored targets).
#pragma once

#include <string>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterCrossEntropyOps(OpRegistry& r);

// Workspace of cross_entropy (its op's rule; the CPU kernel lays it out the same way): one
// double per row (that row's loss term), so the mean is summed in row order whatever the
// threading.
size_t CrossEntropyWorkspaceBytes(int64_t rows);

namespace ops {
// Returns the loss (output 0); the node's second output is lse ("<name>.lse").
Value* CrossEntropy(Builder& b, Value* logits, Value* targets, int64_t ignore_index = -100,
                    const std::string& name = "");
// dlogits [..., V] in logits' dtype (the backward of CrossEntropy; emitted by its backward rule).
Value* CrossEntropyBwd(Builder& b, Value* dloss, Value* logits, Value* targets, Value* lse,
                       int64_t ignore_index = -100, const std::string& name = "");
}  // namespace ops
}  // namespace zt::ir
