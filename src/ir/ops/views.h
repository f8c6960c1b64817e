// Views op family: reshape (an alias: same memory, new shape), transpose (permute dims),
// split (along an axis into pieces) and concat (the inverse).
// transpose, split and concat are materialised copies that work for every dtype (they move bytes).
#pragma once

#include <string>
#include <vector>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterViewOps(OpRegistry& r);

// Largest rank transpose accepts (its kernels keep per-dim state in fixed-size arrays).
inline constexpr int kMaxTransposeRank = 16;

namespace ops {
// `shape` may hold one -1, inferred from the element count.
Value* Reshape(Builder& b, Value* x, const Shape& shape, const std::string& name = "");
Value* ReshapeInferred(Builder& b, Value* x, std::vector<int64_t> dims, const std::string& name = "");
// out[i_perm[0], ...] layout: out.shape[j] = x.shape[perm[j]] (a copy).
Value* Transpose(Builder& b, Value* x, std::vector<int64_t> perm, const std::string& name = "");
// Pieces of x along `axis` with the given sizes (summing to x.shape[axis]). A negative axis counts
// from the end. The outputs are named name, name.1, name.2, ...
std::vector<Value*> Split(Builder& b, Value* x, int64_t axis, std::vector<int64_t> sizes,
                          const std::string& name = "");
// The xs joined along `axis` (negative: from the end); equal dtypes and dims except along axis.
Value* Concat(Builder& b, std::vector<Value*> xs, int64_t axis, const std::string& name = "");

// The permutation q with q[perm[j]] = j (transpose by q undoes transpose by perm).
std::vector<int64_t> InversePermutation(const std::vector<int64_t>& perm);
}  // namespace ops
}  // namespace zt::ir
