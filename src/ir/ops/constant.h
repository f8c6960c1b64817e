// Constant op family: fill (a tensor of one value) and arange (0, 1, ..., n-1).
#pragma once

#include <string>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterConstantOps(OpRegistry& r);

namespace ops {
Value* Fill(Builder& b, DType dtype, const Shape& shape, double value, const std::string& name = "");
Value* Arange(Builder& b, int64_t n, DType dtype = DType::kI32, const std::string& name = "");
}  // namespace ops
}  // namespace zt::ir
