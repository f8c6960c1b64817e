// rope(x [B, T, H, D]){theta (default 10000), inverse (default false)} -> y (x's type).
//   For i < D/2, with a = t * theta^(-2i/D) at position t (0..T-1), negated when inverse:
//     y[i] = x[i] cos a - x[i + D/2] sin a,   y[i + D/2] = x[i + D/2] cos a + x[i] sin a.
//   Angles follow HF LlamaRotaryEmbedding's f32 arithmetic (inv_freq, t * inv_freq, cos/sin in f32).
// Backward: the rotation is orthogonal, so dx = rope(dy) with `inverse` flipped.
// Invariant: D is even and theta > 0 (the shape rule rejects anything else).
#include "ir/ops/rope.h"

#include "core/mem_category.h"
#include "ir/ops/op_helpers.h"

namespace zt::ir {
namespace ops {

Value* Rope(Builder& b, Value* x, double theta, const std::string& name) {
  return b.Emit1("rope", {x}, {{"theta", theta}, {"inverse", false}}, name);
}

Value* RopeInverse(Builder& b, Value* x, double theta, const std::string& name) {
  return b.Emit1("rope", {x}, {{"theta", theta}, {"inverse", true}}, name);
}

}  // namespace ops

using namespace ops;

void RegisterRopeOps(OpRegistry& r) {
  OpDef d;
  d.name = "rope";
  d.doc = "rotary position embedding over x [B, T, H, D] (HF rotate_half); inverse rotates back";
  d.input_names = {"x"};
  d.min_inputs = d.max_inputs = 1;
  d.attrs = {{"theta", AttrType::kFloat, 10000.0}, {"inverse", AttrType::kBool, false}};
  d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
    ZT_RETURN_IF_ERROR(ExpectFloating(in, 0, "x"));
    ZT_RETURN_IF_ERROR(ExpectRank(in, 0, "x", 4));
    if (in[0].shape[3] % 2 != 0)
      return InvalidArgument("rope: head dim D of input 0 (x) " + TypeToString(in[0]) + " must be even");
    double theta = a.GetFloat("theta");
    if (!(theta > 0.0)) return InvalidArgument("rope: theta must be > 0, got " + std::to_string(theta));
    return std::vector<TypeSpec>{in[0]};
  };
  d.grad = [](GradContext& c) -> std::vector<Value*> {
    double theta = c.attrs().GetFloat("theta");
    bool inverse = c.attrs().GetBool("inverse");
    Value* dy = c.dout[0];
    return {inverse ? Rope(c.b, dy, theta, "dx") : RopeInverse(c.b, dy, theta, "dx")};
  };
  // Per element: two multiplies and one add, plus its share of the angle (counted as 3).
  d.cost = ElementwiseCost(6);
  // cos and sin tables of T x D/2 f32 each (see kernels/cpu/rope.cc).
  d.workspace = [](const NodeSig& s) -> size_t {
    const Shape& x = s.inputs[0].shape;
    return 2 * AlignedBytes(static_cast<size_t>(x[1] * (x[3] / 2)) * 4);
  };
  r.Register(std::move(d));
}

}  // namespace zt::ir
