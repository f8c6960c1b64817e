// View ops.
//   reshape(x){shape}: same elements in row-major order with another shape; the output aliases x
//   (no copy). Gradient: reshape back.
#include "ir/ops/views.h"

#include "ir/ops/op_helpers.h"

namespace zt::ir {
namespace ops {

Value* Reshape(Builder& b, Value* x, const Shape& shape, const std::string& name) {
  if (x->shape == shape) return x;
  return b.Emit1("reshape", {x}, {{"shape", shape.dims()}}, name);
}

Value* ReshapeInferred(Builder& b, Value* x, std::vector<int64_t> dims, const std::string& name) {
  int64_t known = 1;
  int infer_at = -1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1) {
      ZT_CHECK_EQ(infer_at, -1) << "reshape: more than one -1";
      infer_at = static_cast<int>(i);
    } else {
      known *= dims[i];
    }
  }
  if (infer_at >= 0) {
    ZT_CHECK(known > 0 && x->shape.numel() % known == 0) << "reshape of " << x->shape << " impossible";
    dims[infer_at] = x->shape.numel() / known;
  }
  return Reshape(b, x, Shape(dims), name);
}

}  // namespace ops

using namespace ops;

static void RegisterReshape(OpRegistry& r) {
  OpDef d;
  d.name = "reshape";
  d.doc = "x with another shape of equal element count (aliases x)";
  d.input_names = {"x"};
  d.min_inputs = d.max_inputs = 1;
  d.attrs = {{"shape", AttrType::kInts, std::nullopt}};
  d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
    for (int64_t v : a.GetInts("shape"))
      if (v < 0) return InvalidArgument("reshape: negative dimension in shape");
    Shape s(a.GetInts("shape"));
    if (s.numel() != in[0].shape.numel())
      return InvalidArgument("reshape: " + in[0].shape.ToString() + " has " + std::to_string(in[0].shape.numel()) +
                             " elements, " + s.ToString() + " has " + std::to_string(s.numel()));
    return std::vector<TypeSpec>{{in[0].dtype, s}};
  };
  d.grad = [](GradContext& c) -> std::vector<Value*> { return {Reshape(c.b, c.dout[0], c.in(0)->shape, "dx")}; };
  d.cost = [](const NodeSig&) { return Cost{}; };  // no data moves
  d.aliases = {{0, 0, AliasKind::kView}};
  r.Register(std::move(d));
}

void RegisterViewOps(OpRegistry& r) { RegisterReshape(r); }

}  // namespace zt::ir
