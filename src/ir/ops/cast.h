// Cast op family: cast(x){dtype} converts between floating types (round to nearest even) and
// from integer types to floating ones.
#pragma once

#include <string>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterCastOps(OpRegistry& r);

namespace ops {
Value* Cast(Builder& b, Value* x, DType to, const std::string& name = "");
}  // namespace ops
}  // namespace zt::ir
