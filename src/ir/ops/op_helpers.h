// Small helpers shared by the op definitions in ir/ops/: input checks for shape rules (each
// returning an InvalidArgument that names the input), and common cost rules.
#pragma once

#include <span>
#include <string>

#include "core/status.h"
#include "ir/op_registry.h"

namespace zt::ir::ops {

Status ExpectFloating(std::span<const TypeSpec> in, int i, const char* name);
Status ExpectIndex(std::span<const TypeSpec> in, int i, const char* name);  // i32 or i64
Status ExpectRankAtLeast(std::span<const TypeSpec> in, int i, const char* name, int rank);
Status ExpectRank(std::span<const TypeSpec> in, int i, const char* name, int rank);
Status ExpectSameDType(std::span<const TypeSpec> in, int i, int j, const char* ni, const char* nj);
Status ExpectSameShape(std::span<const TypeSpec> in, int i, int j, const char* ni, const char* nj);
// Shape of input j must equal the trailing dims of input i ("broadcast over leading dims").
Status ExpectSuffix(std::span<const TypeSpec> in, int i, int j, const char* ni, const char* nj);

// Cost of an op doing `flops_per_element` flops per element of its first output, reading its
// inputs and writing its outputs once.
CostFn ElementwiseCost(double flops_per_element);
// Bytes of a dtype-sized buffer of n elements.
inline double Bytes(int64_t n, DType t) { return static_cast<double>(n) * DTypeSize(t); }
// Sums of input/output sizes (the default byte counts).
double InputBytes(const NodeSig& s);
double OutputBytes(const NodeSig& s);

}  // namespace zt::ir::ops
