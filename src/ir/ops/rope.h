// RoPE op family (Llama / HF "rotate_half" convention): rope(x){theta, inverse} on x [B, T, H, D]
// rotates pairs (i, i + D/2) of each head by angle t * theta^(-2i/D) at position t = 0..T-1.
// inverse=true rotates by the negative angle, which is the backward of the forward.
#pragma once

#include <string>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterRopeOps(OpRegistry& r);

namespace ops {
Value* Rope(Builder& b, Value* x, double theta, const std::string& name = "");
// The inverse rotation (angle -a): rope(x){theta, inverse=true}. Undoes Rope exactly up to rounding.
Value* RopeInverse(Builder& b, Value* x, double theta, const std::string& name = "");
}  // namespace ops
}  // namespace zt::ir
