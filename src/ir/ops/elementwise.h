// Elementwise op family: add, mul (second input broadcast over the leading dims of the first),
// scale by a constant, reduce_sum_to (sum leading dims away) and broadcast_to (its adjoint).
#pragma once

#include <string>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterElementwiseOps(OpRegistry& r);

namespace ops {
Value* Add(Builder& b, Value* x, Value* y, const std::string& name = "");
Value* Mul(Builder& b, Value* x, Value* y, const std::string& name = "");
Value* Scale(Builder& b, Value* x, double alpha, const std::string& name = "");
// Sums the leading dims of x so that the result has `shape` (a suffix of x's shape).
Value* ReduceSumTo(Builder& b, Value* x, const Shape& shape, const std::string& name = "");
// Repeats x (whose shape is a suffix of `shape`) over new leading dims.
Value* BroadcastTo(Builder& b, Value* x, const Shape& shape, const std::string& name = "");
}  // namespace ops
}  // namespace zt::ir
