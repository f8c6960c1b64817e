// Elementwise op family: add, mul (second input broadcast over the leading dims of the first),
// scale by a constant, reduce_sum_to (sum leading dims away) and broadcast_to (its adjoint).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterElementwiseOps(OpRegistry& r);

// reduce_sum_to of `rows` rows of m columns (m > 1) on a device splits the rows into a fixed
// number of contiguous chunks that depends on (rows, m) only, never on the device: one f64 partial
// sum per (chunk, column) lives in the workspace, and the partials of a column are combined in
// chunk order. At least 1; 1 (no partials, no workspace) for m <= 1, few rows, or very wide m.
// The CPU kernel needs no partials and ignores the workspace.
int64_t ReduceSumToChunks(int64_t rows, int64_t m);
// Workspace bytes the op asks for: chunks * m f64 when chunks > 1, else 0.
size_t ReduceSumToWorkspaceBytes(int64_t rows, int64_t m);

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
