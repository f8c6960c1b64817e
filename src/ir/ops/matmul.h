// Matmul op family: out = op(a) @ op(b) [+ bias], op(x) = x or its transpose over the last two
// dims. Batched over leading dims; a rank-2 operand is shared by every batch.
#pragma once

#include <string>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterMatmulOps(OpRegistry& r);

namespace ops {
Value* Matmul(Builder& b, Value* a, Value* w, bool trans_a = false, bool trans_b = false,
              Value* bias = nullptr, const std::string& name = "");
// x @ w^T + bias with w in nn.Linear layout [out, in]; x is [..., in].
Value* Linear(Builder& b, Value* x, Value* w, Value* bias = nullptr, const std::string& name = "");
}  // namespace ops
}  // namespace zt::ir
