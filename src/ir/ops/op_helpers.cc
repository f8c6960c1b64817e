// Shared checks and cost rules for op definitions.
#include "ir/ops/op_helpers.h"

namespace zt::ir::ops {

static std::string Desc(std::span<const TypeSpec> in, int i, const char* name) {
  return std::string("input ") + std::to_string(i) + " (" + name + ") " + TypeToString(in[i]);
}

Status ExpectFloating(std::span<const TypeSpec> in, int i, const char* name) {
  if (!IsFloating(in[i].dtype)) return InvalidArgument(Desc(in, i, name) + " must be f32, bf16 or f16");
  return OkStatus();
}

Status ExpectIndex(std::span<const TypeSpec> in, int i, const char* name) {
  if (in[i].dtype != DType::kI32 && in[i].dtype != DType::kI64)
    return InvalidArgument(Desc(in, i, name) + " must be i32 or i64");
  return OkStatus();
}

Status ExpectRankAtLeast(std::span<const TypeSpec> in, int i, const char* name, int rank) {
  if (in[i].shape.rank() < rank)
    return InvalidArgument(Desc(in, i, name) + " must have rank >= " + std::to_string(rank));
  return OkStatus();
}

Status ExpectRank(std::span<const TypeSpec> in, int i, const char* name, int rank) {
  if (in[i].shape.rank() != rank)
    return InvalidArgument(Desc(in, i, name) + " must have rank " + std::to_string(rank));
  return OkStatus();
}

Status ExpectSameDType(std::span<const TypeSpec> in, int i, int j, const char* ni, const char* nj) {
  if (in[i].dtype != in[j].dtype)
    return InvalidArgument(Desc(in, j, nj) + " must have the dtype of " + Desc(in, i, ni));
  return OkStatus();
}

Status ExpectSameShape(std::span<const TypeSpec> in, int i, int j, const char* ni, const char* nj) {
  if (in[i].shape != in[j].shape)
    return InvalidArgument(Desc(in, j, nj) + " must have the shape of " + Desc(in, i, ni));
  return OkStatus();
}

Status ExpectSuffix(std::span<const TypeSpec> in, int i, int j, const char* ni, const char* nj) {
  if (!in[i].shape.EndsWith(in[j].shape))
    return InvalidArgument(Desc(in, j, nj) + " must equal the trailing dimensions of " + Desc(in, i, ni));
  return OkStatus();
}

double InputBytes(const NodeSig& s) {
  double b = 0;
  for (auto& t : s.inputs) b += static_cast<double>(t.nbytes());
  return b;
}

double OutputBytes(const NodeSig& s) {
  double b = 0;
  for (auto& t : s.outputs) b += static_cast<double>(t.nbytes());
  return b;
}

CostFn ElementwiseCost(double flops_per_element) {
  return [flops_per_element](const NodeSig& s) {
    Cost c;
    c.flops = flops_per_element * static_cast<double>(s.outputs.empty() ? 0 : s.outputs[0].shape.numel());
    c.bytes_read = InputBytes(s);
    c.bytes_written = OutputBytes(s);
    return c;
  };
}

}  // namespace zt::ir::ops
