// Matmul epilogue ops (see matmul_epilogue.h). Each is exactly a composition of existing ops, with
// every intermediate rounded to the dtype as the unfused nodes round it (the CPU kernels compose
// the unfused kernels and are bit-identical to them; CUDA computes the epilogue from cuBLASLt's
// f32 accumulator and agrees within the dtype's tolerance):
//   matmul_gelu(a, b[, bias]){trans_a, trans_b} -> (out, pre)
//       pre = matmul(a, b[, bias]) (the matmul's output, rounded), out = gelu(pre).
//   matmul_dgelu(a, b, pre){trans_a, trans_b} -> dpre
//       dpre = gelu_bwd(matmul(a, b), pre); pre has the product's shape and dtype.
//   matmul_bgrad(a, b){trans_a, trans_b, bias_of} -> (out, bias_grad)
//       out = matmul(a, b) with a [K, M], b [K, N], trans_a = true, trans_b = false (a weight
//       gradient: the only layout cuBLASLt's bias-gradient epilogues are used for);
//       bias_grad = reduce_sum_to(b, [N]) when bias_of = "b", reduce_sum_to(a, [M]) when "a".
// Shapes, costs and workspaces come from the matmul op's own rules (one source of truth): the
// workspace covers the matmul the CUDA kernels fall back to, and matmul_bgrad's also the
// reduce_sum_to partials of that fallback.
// No backward rules: the fusion pass runs after autodiff, on the finished step.
// Invariant: infer accepts exactly what the CPU and CUDA kernels run (anything matmul accepts, but
// matmul_bgrad only in the weight-gradient layout above, rank 2).
#include "ir/ops/matmul_epilogue.h"

#include <algorithm>

#include "ir/ops/elementwise.h"
#include "ir/ops/op_helpers.h"

namespace zt::ir {
namespace {

const OpDef& MatmulOp() { return *GetOp("matmul"); }

// The type of matmul(in[0], in[1][, in[2]]) under `attrs`, errors named after `op`.
StatusOr<TypeSpec> MatmulType(const char* op, std::span<const TypeSpec> in, const AttrMap& attrs) {
  auto t = MatmulOp().infer(in, attrs);
  if (!t.ok()) return InvalidArgument(std::string(op) + ": " + t.status().message());
  return (*t)[0];
}

// The matmul node inside a fused one: its inputs (a, b[, bias]) and its one output `out`.
Cost MatmulCost(std::span<const TypeSpec> in, const TypeSpec& out, const NodeSig& s) {
  return MatmulOp().ComputeCost(NodeSig{in, std::span<const TypeSpec>(&out, 1), s.attrs, s.target});
}
size_t MatmulWorkspace(std::span<const TypeSpec> in, const TypeSpec& out, const NodeSig& s) {
  return MatmulOp().ComputeWorkspace(NodeSig{in, std::span<const TypeSpec>(&out, 1), s.attrs, s.target});
}

// Flops of the elementwise op `op` producing `t` (the activation family's counts per element).
double ElementwiseFlops(const char* op, const TypeSpec& t, const NodeSig& s) {
  std::span<const TypeSpec> one(&t, 1);
  return GetOp(op)->ComputeCost(NodeSig{one, one, s.attrs, s.target}).flops;
}

// Bytes every fused op reads and writes: its own inputs and outputs, once.
Cost FusedCost(double flops, const NodeSig& s) {
  Cost c;
  c.flops = flops;
  c.bytes_read = ops::InputBytes(s);
  c.bytes_written = ops::OutputBytes(s);
  return c;
}

std::vector<AttrSpec> TransposeAttrs() {
  return {{"trans_a", AttrType::kBool, false}, {"trans_b", AttrType::kBool, false}};
}

void RegisterMatmulGelu(OpRegistry& r) {
  OpDef d;
  d.name = "matmul_gelu";
  d.doc = "pre = op(a) @ op(b) [+ bias], out = gelu(pre)";
  d.input_names = {"a", "b", "bias"};
  d.min_inputs = 2;
  d.max_inputs = 3;
  d.output_names = {"", "pre"};
  d.attrs = TransposeAttrs();
  d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
    ZT_ASSIGN_OR_RETURN(TypeSpec t, MatmulType("matmul_gelu", in, a));
    return std::vector<TypeSpec>{t, t};
  };
  d.cost = [](const NodeSig& s) {
    const TypeSpec& pre = s.outputs[1];
    double flops = MatmulCost(s.inputs, pre, s).flops +
                   ElementwiseFlops("gelu", pre, s);
    return FusedCost(flops, s);
  };
  d.workspace = [](const NodeSig& s) { return MatmulWorkspace(s.inputs, s.outputs[1], s); };
  r.Register(std::move(d));
}

void RegisterMatmulDGelu(OpRegistry& r) {
  OpDef d;
  d.name = "matmul_dgelu";
  d.doc = "gelu_bwd(op(a) @ op(b), pre)";
  d.input_names = {"a", "b", "pre"};
  d.min_inputs = d.max_inputs = 3;
  d.attrs = TransposeAttrs();
  d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
    ZT_ASSIGN_OR_RETURN(TypeSpec t, MatmulType("matmul_dgelu", in.first(2), a));
    if (!(in[2] == t)) {
      return InvalidArgument("matmul_dgelu: pre " + TypeToString(in[2]) + " must have the product's type " +
                             TypeToString(t));
    }
    return std::vector<TypeSpec>{t};
  };
  d.cost = [](const NodeSig& s) {
    const TypeSpec& dpre = s.outputs[0];
    double flops = MatmulCost(s.inputs.first(2), dpre, s).flops +
                   ElementwiseFlops("gelu_bwd", dpre, s);
    return FusedCost(flops, s);
  };
  d.workspace = [](const NodeSig& s) { return MatmulWorkspace(s.inputs.first(2), s.outputs[0], s); };
  r.Register(std::move(d));
}

// The operand matmul_bgrad sums: 0 (a) or 1 (b); -1 for an invalid bias_of.
int SummedOperand(const AttrMap& a) {
  const std::string& of = a.GetString("bias_of");
  return of == "a" ? 0 : of == "b" ? 1 : -1;
}

void RegisterMatmulBGrad(OpRegistry& r) {
  OpDef d;
  d.name = "matmul_bgrad";
  d.doc = "out = a^T @ b, bias_grad = column sums of a or b (bias_of)";
  d.input_names = {"a", "b"};
  d.min_inputs = d.max_inputs = 2;
  d.output_names = {"", "bias_grad"};
  d.attrs = TransposeAttrs();
  d.attrs.push_back({"bias_of", AttrType::kString, std::string("b")});
  d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
    ZT_ASSIGN_OR_RETURN(TypeSpec t, MatmulType("matmul_bgrad", in, a));
    if (!a.GetBool("trans_a") || a.GetBool("trans_b")) {
      return InvalidArgument("matmul_bgrad: only a^T @ b (trans_a=true, trans_b=false) is supported");
    }
    ZT_RETURN_IF_ERROR(ops::ExpectRank(in, 0, "a", 2));
    ZT_RETURN_IF_ERROR(ops::ExpectRank(in, 1, "b", 2));
    int summed = SummedOperand(a);
    if (summed < 0) return InvalidArgument("matmul_bgrad: bias_of must be \"a\" or \"b\", got \"" +
                                           a.GetString("bias_of") + "\"");
    return std::vector<TypeSpec>{t, {t.dtype, Shape{in[summed].shape[-1]}}};
  };
  d.cost = [](const NodeSig& s) {
    const TypeSpec& summed = s.inputs[SummedOperand(s.attrs)];
    double flops = MatmulCost(s.inputs, s.outputs[0], s).flops + static_cast<double>(summed.shape.numel());
    return FusedCost(flops, s);
  };
  d.workspace = [](const NodeSig& s) -> size_t {
    const TypeSpec& summed = s.inputs[SummedOperand(s.attrs)];
    return std::max(MatmulWorkspace(s.inputs, s.outputs[0], s),
                    ReduceSumToWorkspaceBytes(summed.shape[0], summed.shape[1]));
  };
  r.Register(std::move(d));
}

}  // namespace

void RegisterMatmulEpilogueOps(OpRegistry& r) {
  RegisterMatmulGelu(r);
  RegisterMatmulDGelu(r);
  RegisterMatmulBGrad(r);
}

}  // namespace zt::ir
