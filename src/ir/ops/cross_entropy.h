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

namespace ops {
Value* CrossEntropy(Builder& b, Value* logits, Value* targets, int64_t ignore_index = -100,
                    const std::string& name = "");
}  // namespace ops
}  // namespace zt::ir
