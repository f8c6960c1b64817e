// cast(x){dtype}: x converted element by element to `dtype`, same shape.
//   float -> float: through f32 (exact for bf16/f16 -> f32), then rounded to nearest, ties to even
//   (core/dtype.h FromF32); Inf stays Inf, NaN stays NaN.
//   integer (i32, i64, u8) -> float: the nearest representable value (ties to even).
//   same dtype -> a copy (any dtype). float -> integer and integer -> another integer: rejected.
// Backward (float -> float): cast of dout back to x's dtype. Integer inputs get no gradient.
// Invariant: infer rejects every conversion the kernel does not implement.
#include "ir/ops/cast.h"

#include "ir/ops/op_helpers.h"

namespace zt::ir {
namespace ops {

Value* Cast(Builder& b, Value* x, DType to, const std::string& name) {
  if (x->dtype == to) return x;
  return b.Emit1("cast", {x}, {{"dtype", to}}, name);
}

}  // namespace ops

using namespace ops;

void RegisterCastOps(OpRegistry& r) {
  OpDef d;
  d.name = "cast";
  d.doc = "x converted to dtype (float <-> float rounds to nearest even; integer -> float)";
  d.input_names = {"x"};
  d.min_inputs = d.max_inputs = 1;
  d.attrs = {{"dtype", AttrType::kDType, std::nullopt}};
  d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
    DType from = in[0].dtype, to = a.GetDType("dtype");
    if (from != to && !IsFloating(to)) {
      return InvalidArgument(std::string("cast: attribute 'dtype' = ") + DTypeName(to) + " is not a supported target for input 0 (x) " +
                             TypeToString(in[0]) + "; cast converts to f32, bf16 or f16 only (float -> integer is not " +
                             "supported), or copies within one dtype");
    }
    return std::vector<TypeSpec>{{to, in[0].shape}};
  };
  d.grad = [](GradContext& c) -> std::vector<Value*> {
    if (!IsFloating(c.in(0)->dtype)) return {nullptr};  // integer inputs are not differentiable
    return {Cast(c.b, c.dout[0], c.in(0)->dtype, "dx")};
  };
  d.cost = ElementwiseCost(1);
  r.Register(std::move(d));
}

}  // namespace zt::ir
