// adamw(param, grad, exp_avg, exp_avg_sq, scalars, grad_sumsq[, master]){beta1, beta2, eps,
//       weight_decay} -> (param', exp_avg', exp_avg_sq'[, master']), each in place over its input.
// grad_sumsq (f32[]) is the sum of squares of every stored gradient of the step (sum_squares);
// when it is not finite (fp16 overflow) the update is skipped entirely. Otherwise, with
// mult = scalars[grad_multiplier] and the true global norm n = sqrt(grad_sumsq) * mult:
//   g = grad * mult * ClipCoefficient(n, scalars[max_norm]);
//   w = master if given, else param;  w *= 1 - lr*wd;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;
//   w -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps);  param = w rounded to param's dtype.
// Decoupled weight decay and bias correction as torch.optim.AdamW. exp_avg, exp_avg_sq and master
// are f32; param and grad any floating type of param's shape.
//
// adamw_multi(scalars, grad_sumsq, p_0..p_{k-1}, m_0.., v_0.., [w_0..,] g_0..){tensors = k, beta1,
//       beta2, eps, weight_decay} -> (p'_0.., m'_0.., v'_0.., [w'_0..]): exactly k adamw updates
// (p_i, g_i, m_i, v_i, scalars, grad_sumsq[, w_i]) with one set of attributes, in one node (one
// launch on CUDA; made by passes/fuse_adamw.h). Inputs are grouped by role (AdamWMultiLayout) so
// that output o is input o + 2 updated in place. Master weights are present for every tensor or
// for none (2 + 5k or 2 + 4k inputs); every p_i has one dtype, every g_i one dtype. Its cost is
// the sum of the k adamw nodes' costs.
// Invariant: both ops accept a tensor exactly when the other does (one shared check), and
// adamw_multi's result is, bit for bit, that of its k adamw nodes.
#include "ir/ops/adamw.h"

#include <string>

#include "ir/ops/op_helpers.h"

namespace zt::ir {
namespace {

const std::vector<AttrSpec>& HyperAttrs() {
  static const std::vector<AttrSpec> a = {{"beta1", AttrType::kFloat, 0.9},
                                          {"beta2", AttrType::kFloat, 0.999},
                                          {"eps", AttrType::kFloat, 1e-8},
                                          {"weight_decay", AttrType::kFloat, 0.01}};
  return a;
}

// One tensor's operands: input indices (master -1: none) and how messages call them.
struct TensorOperands {
  int param, grad, exp_avg, exp_avg_sq, master;
  std::string names[5];  // param, grad, exp_avg, exp_avg_sq, master
};

// What adamw requires of one tensor's operands (messages without the op's name).
Status CheckTensor(std::span<const TypeSpec> in, const TensorOperands& t) {
  using namespace ops;
  const std::string* n = t.names;
  ZT_RETURN_IF_ERROR(ExpectFloating(in, t.param, n[0].c_str()));
  ZT_RETURN_IF_ERROR(ExpectFloating(in, t.grad, n[1].c_str()));
  ZT_RETURN_IF_ERROR(ExpectSameShape(in, t.param, t.grad, n[0].c_str(), n[1].c_str()));
  ZT_RETURN_IF_ERROR(ExpectSameShape(in, t.param, t.exp_avg, n[0].c_str(), n[2].c_str()));
  ZT_RETURN_IF_ERROR(ExpectSameShape(in, t.param, t.exp_avg_sq, n[0].c_str(), n[3].c_str()));
  if (in[t.exp_avg].dtype != DType::kF32 || in[t.exp_avg_sq].dtype != DType::kF32)
    return InvalidArgument(n[2] + " and " + n[3] + " must be f32");
  if (t.master >= 0) {
    ZT_RETURN_IF_ERROR(ExpectSameShape(in, t.param, t.master, n[0].c_str(), n[4].c_str()));
    if (in[t.master].dtype != DType::kF32) return InvalidArgument("master weights " + n[4] + " must be f32");
  }
  return OkStatus();
}

Status CheckScalars(const TypeSpec& scalars, const TypeSpec& grad_sumsq) {
  if (scalars.dtype != DType::kF32 || scalars.shape != Shape{kAdamWScalars})
    return InvalidArgument("scalars must be f32[" + std::to_string(kAdamWScalars) + "], is " + TypeToString(scalars));
  if (grad_sumsq.dtype != DType::kF32 || grad_sumsq.shape.numel() != 1)
    return InvalidArgument("grad_sumsq must be an f32 scalar, is " + TypeToString(grad_sumsq));
  return OkStatus();
}

void RegisterAdamW(OpRegistry& r) {
  OpDef d;
  d.name = "adamw";
  d.doc = "AdamW update of one parameter, in place, with global-norm clipping and overflow skip";
  d.input_names = {"param", "grad", "exp_avg", "exp_avg_sq", "scalars", "grad_sumsq", "master"};
  d.min_inputs = 6;
  d.max_inputs = 7;
  d.output_names = {"", "exp_avg", "exp_avg_sq", "master"};
  d.attrs = HyperAttrs();
  d.infer = [](std::span<const TypeSpec> in, const AttrMap&) -> StatusOr<std::vector<TypeSpec>> {
    const bool master = in.size() == 7;
    TensorOperands t{0, 1, 2, 3, master ? 6 : -1, {"param", "grad", "exp_avg", "exp_avg_sq", "master"}};
    ZT_RETURN_IF_ERROR(CheckTensor(in, t).WithContext("adamw"));
    ZT_RETURN_IF_ERROR(CheckScalars(in[4], in[5]).WithContext("adamw"));
    std::vector<TypeSpec> out = {in[0], in[2], in[3]};
    if (master) out.push_back(in[6]);
    return out;
  };
  d.cost = ops::ElementwiseCost(16);
  d.aliases = {{0, 0, AliasKind::kInPlace},
               {1, 2, AliasKind::kInPlace},
               {2, 3, AliasKind::kInPlace},
               {3, 6, AliasKind::kInPlace}};
  d.side_effects = true;
  r.Register(std::move(d));
}

// The layout a node's input count gives for `tensors` = k, or an error naming the counts.
StatusOr<AdamWMultiLayout> MultiLayout(size_t inputs, int64_t k) {
  if (k < 1) return InvalidArgument("adamw_multi: attribute 'tensors' must be >= 1, is " + std::to_string(k));
  if (k > static_cast<int64_t>(inputs))  // (and 2 + 5k cannot overflow below)
    return InvalidArgument("adamw_multi: tensors=" + std::to_string(k) + " needs 2 + 4k or 2 + 5k inputs; got " +
                           std::to_string(inputs));
  const AdamWMultiLayout l = AdamWMultiLayout::Of(k, inputs);
  if (static_cast<int64_t>(inputs) == l.inputs()) return l;
  return InvalidArgument("adamw_multi: tensors=" + std::to_string(k) + " takes 2 + 4k = " + std::to_string(2 + 4 * k) +
                         " inputs, or 2 + 5k = " + std::to_string(2 + 5 * k) + " with master weights; got " +
                         std::to_string(inputs));
}

void RegisterAdamWMulti(OpRegistry& r) {
  OpDef d;
  d.name = "adamw_multi";
  d.doc = "AdamW update of k parameters in one node, in place; the same result as k adamw nodes";
  d.input_names = {"scalars", "grad_sumsq", "tensor"};
  d.min_inputs = 6;
  d.max_inputs = -1;
  d.attrs = HyperAttrs();
  d.attrs.insert(d.attrs.begin(), {"tensors", AttrType::kInt, std::nullopt});
  d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
    ZT_ASSIGN_OR_RETURN(AdamWMultiLayout l, MultiLayout(in.size(), a.GetInt("tensors")));
    ZT_RETURN_IF_ERROR(CheckScalars(in[l.kScalarsInput], in[l.kGradSumsqInput]).WithContext("adamw_multi"));
    std::vector<TypeSpec> out(static_cast<size_t>(l.outputs()));
    for (int64_t i = 0; i < l.k; ++i) {
      const std::string s = "_" + std::to_string(i);
      TensorOperands t{static_cast<int>(l.param(i)), static_cast<int>(l.grad(i)), static_cast<int>(l.exp_avg(i)),
                       static_cast<int>(l.exp_avg_sq(i)), l.masters ? static_cast<int>(l.master(i)) : -1,
                       {"p" + s, "g" + s, "m" + s, "v" + s, "w" + s}};
      const std::string where = "adamw_multi: tensor " + std::to_string(i);
      ZT_RETURN_IF_ERROR(CheckTensor(in, t).WithContext(where));
      ZT_RETURN_IF_ERROR(ops::ExpectSameDType(in, l.param(0), t.param, "p_0", t.names[0].c_str()).WithContext(where));
      ZT_RETURN_IF_ERROR(ops::ExpectSameDType(in, l.grad(0), t.grad, "g_0", t.names[1].c_str()).WithContext(where));
    }
    for (size_t o = 0; o < out.size(); ++o) out[o] = in[o + kAdamWMultiShift];
    return out;
  };
  // The sum of the k adamw nodes' costs (each reads the scalars and grad_sumsq).
  d.cost = [](const NodeSig& s) {
    const auto l = AdamWMultiLayout::Of(s.attrs.GetInt("tensors"), s.inputs.size());
    const CostFn one = ops::ElementwiseCost(16);
    Cost c;
    for (int64_t i = 0; i < l.k; ++i) {
      std::vector<TypeSpec> in = {s.inputs[l.param(i)],      s.inputs[l.grad(i)],           s.inputs[l.exp_avg(i)],
                                  s.inputs[l.exp_avg_sq(i)], s.inputs[l.kScalarsInput], s.inputs[l.kGradSumsqInput]};
      std::vector<TypeSpec> out = {s.outputs[l.param(i) - kAdamWMultiShift], s.outputs[l.exp_avg(i) - kAdamWMultiShift],
                                   s.outputs[l.exp_avg_sq(i) - kAdamWMultiShift]};
      if (l.masters) {
        in.push_back(s.inputs[l.master(i)]);
        out.push_back(s.outputs[l.master(i) - kAdamWMultiShift]);
      }
      Cost t = one(NodeSig{in, out, s.attrs, s.target});
      c.flops += t.flops;
      c.bytes_read += t.bytes_read;
      c.bytes_written += t.bytes_written;
    }
    return c;
  };
  d.aliases = {{kEveryOutput, kAdamWMultiShift, AliasKind::kInPlace}};  // output o overwrites input o + 2
  d.side_effects = true;
  r.Register(std::move(d));
}

}  // namespace

void RegisterAdamWOps(OpRegistry& r) {
  RegisterAdamW(r);
  RegisterAdamWMulti(r);
}

}  // namespace zt::ir
