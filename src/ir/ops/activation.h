// Activation op family: gelu (tanh form), silu, swiglu(gate, up) = silu(gate) * up; each with a
// backward op: gelu_bwd(dy, x), silu_bwd(dy, x), swiglu_bwd(dy, gate, up) -> (dgate, dup).
#pragma once

#include <string>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterActivationOps(OpRegistry& r);

namespace ops {
Value* Gelu(Builder& b, Value* x, const std::string& name = "");
Value* Silu(Builder& b, Value* x, const std::string& name = "");
Value* SwiGlu(Builder& b, Value* gate, Value* up, const std::string& name = "");
}  // namespace ops
}  // namespace zt::ir
