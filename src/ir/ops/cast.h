// Cast op family: cast(x){dtype} converts between floating types (round to nearest even) and
// from integer types to floating ones.
#pragma once

#include <string>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterCastOps(OpRegistry& r);

namespace ops {
// Returns x itself (no node) when x already has dtype `to`.
Value* Cast(Builder& b, Value* x, DType to, const std::string& name = "");
}  // namespace ops
}  // namespace zt::ir
