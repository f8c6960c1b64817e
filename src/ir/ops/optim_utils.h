// Optimizer utility ops: sum_squares(x0, x1, ...) -> f32[] (the sum of squares of every element of
// every input, accumulated in double in a fixed order: the squared global gradient norm);
// accumulate(acc f32, x) -> acc' (acc += x, in place: gradient accumulation across micro-batches);
// zero(x) -> x' (x = 0, in place). None is differentiable.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterOptimUtilsOps(OpRegistry& r);

namespace ops {
Value* SumSquares(Builder& b, const std::vector<Value*>& xs, const std::string& name = "");
Value* Accumulate(Builder& b, Value* acc, Value* x, const std::string& name = "");
Value* Zero(Builder& b, Value* x, const std::string& name = "");
}  // namespace ops

// sum_squares reduces each input in chunks of kSumSquaresChunk elements (fixed, so the result does
// not depend on the thread count); its workspace holds one double per chunk.
inline constexpr int64_t kSumSquaresChunk = 1 << 16;
int64_t SumSquaresPartials(std::span<const TypeSpec> inputs);
}  // namespace zt::ir
