// Flat-buffer op family (the layout ops of data parallelism and ZeRO):
//   pack(x1, ..., xk){numel, dtype} -> [numel]: the flattened inputs one after another, converted
//     to dtype, zero-padded to numel;
//   unpack_into(flat, p1, ..., pk) -> (p1', ..., pk'): each p_i overwritten in place with its
//     slice of flat (the layout pack writes), converted to p_i's dtype;
//   view_slice(x){offset, shape} -> shape: elements [offset, offset + numel(shape)) of x seen as
//     `shape` without a copy (a view into x's memory).
#pragma once

#include <string>
#include <vector>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterFlatOps(OpRegistry& r);

namespace ops {
Value* Pack(Builder& b, const std::vector<Value*>& xs, int64_t numel, DType dtype, const std::string& name = "");
std::vector<Value*> UnpackInto(Builder& b, Value* flat, const std::vector<Value*>& targets, const std::string& name = "");
Value* ViewSlice(Builder& b, Value* x, int64_t offset, const Shape& shape, const std::string& name = "");
}  // namespace ops
}  // namespace zt::ir
