// Cross-entropy op family: cross_entropy(logits [..., V], targets i32/i64 [...]){classes, ignore_index}
//   -> (loss f32[] = mean over targets != ignore_index of -log softmax(logits)[target],
//       lse f32 [...] saved for the backward); 0 when every target is ignored.
//   cross_entropy_bwd(dloss, logits, targets, lse){classes, ignore_index} -> dlogits (softmax -
//   onehot, scaled by dloss / count; zero rows for ignored targets).
// `classes` (0: all V) limits the softmax to the first `classes` columns: the rest are padding
// (a vocabulary padded for fast GEMMs), never read by the forward, exactly 0 in dlogits.
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

// The number of valid classes of a node of either op with logits [..., v]: its `classes`
// attribute, or v when that is 0 (the attribute is verified to be in [0, v]).
int64_t CrossEntropyClasses(const AttrMap& attrs, int64_t v);

namespace ops {
// Returns the loss (output 0); the node's second output is lse ("<name>.lse"). classes: the
// number of valid columns of logits' last dimension (0: every column).
Value* CrossEntropy(Builder& b, Value* logits, Value* targets, int64_t ignore_index = -100,
                    const std::string& name = "", int64_t classes = 0);
// dlogits [..., V] in logits' dtype (the backward of CrossEntropy; emitted by its backward rule).
Value* CrossEntropyBwd(Builder& b, Value* dloss, Value* logits, Value* targets, Value* lse,
                       int64_t ignore_index = -100, const std::string& name = "", int64_t classes = 0);
}  // namespace ops
}  // namespace zt::ir
