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
#include "ir/ops/adamw.h"

#include "ir/ops/op_helpers.h"

namespace zt::ir {

void RegisterAdamWOps(OpRegistry& r) {
  OpDef d;
  d.name = "adamw";
  d.doc = "AdamW update of one parameter, in place, with global-norm clipping and overflow skip";
  d.input_names = {"param", "grad", "exp_avg", "exp_avg_sq", "scalars", "grad_sumsq", "master"};
  d.min_inputs = 6;
  d.max_inputs = 7;
  d.output_names = {"", "exp_avg", "exp_avg_sq", "master"};
  d.attrs = {{"beta1", AttrType::kFloat, 0.9},
             {"beta2", AttrType::kFloat, 0.999},
             {"eps", AttrType::kFloat, 1e-8},
             {"weight_decay", AttrType::kFloat, 0.01}};
  d.infer = [](std::span<const TypeSpec> in, const AttrMap&) -> StatusOr<std::vector<TypeSpec>> {
    using namespace ops;
    ZT_RETURN_IF_ERROR(ExpectFloating(in, 0, "param"));
    ZT_RETURN_IF_ERROR(ExpectFloating(in, 1, "grad"));
    ZT_RETURN_IF_ERROR(ExpectSameShape(in, 0, 1, "param", "grad"));
    ZT_RETURN_IF_ERROR(ExpectSameShape(in, 0, 2, "param", "exp_avg"));
    ZT_RETURN_IF_ERROR(ExpectSameShape(in, 0, 3, "param", "exp_avg_sq"));
    if (in[2].dtype != DType::kF32 || in[3].dtype != DType::kF32)
      return InvalidArgument("adamw: exp_avg and exp_avg_sq must be f32");
    if (in[4].dtype != DType::kF32 || in[4].shape != Shape{kAdamWScalars})
      return InvalidArgument("adamw: scalars must be f32[" + std::to_string(kAdamWScalars) + "]");
    if (in[5].dtype != DType::kF32 || in[5].shape.numel() != 1)
      return InvalidArgument("adamw: grad_sumsq must be an f32 scalar");
    std::vector<TypeSpec> out = {in[0], in[2], in[3]};
    if (in.size() == 7) {
      ZT_RETURN_IF_ERROR(ExpectSameShape(in, 0, 6, "param", "master"));
      if (in[6].dtype != DType::kF32) return InvalidArgument("adamw: master weights must be f32");
      out.push_back(in[6]);
    }
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

}  // namespace zt::ir
