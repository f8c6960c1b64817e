// Constant ops: fill{dtype, shape, value} and arange{n, dtype}. No inputs, no gradients.
#include "ir/ops/constant.h"

#include "ir/ops/op_helpers.h"

namespace zt::ir {
namespace ops {

Value* Fill(Builder& b, DType dtype, const Shape& shape, double value, const std::string& name) {
  return b.Emit1("fill", {}, {{"dtype", dtype}, {"shape", shape.dims()}, {"value", value}}, name);
}

Value* Arange(Builder& b, int64_t n, DType dtype, const std::string& name) {
  return b.Emit1("arange", {}, {{"n", n}, {"dtype", dtype}}, name);
}

}  // namespace ops

void RegisterConstantOps(OpRegistry& r) {
  {
    OpDef d;
    d.name = "fill";
    d.doc = "a tensor of `shape` with every element `value`";
    d.attrs = {{"dtype", AttrType::kDType, std::nullopt},
               {"shape", AttrType::kInts, std::nullopt},
               {"value", AttrType::kFloat, std::nullopt}};
    d.infer = [](std::span<const TypeSpec>, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
      for (int64_t v : a.GetInts("shape"))
        if (v < 0) return InvalidArgument("fill: negative dimension in shape");
      return std::vector<TypeSpec>{{a.GetDType("dtype"), Shape(a.GetInts("shape"))}};
    };
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "arange";
    d.doc = "0, 1, ..., n-1 (integer positions)";
    d.attrs = {{"n", AttrType::kInt, std::nullopt}, {"dtype", AttrType::kDType, DType::kI32}};
    d.infer = [](std::span<const TypeSpec>, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
      if (a.GetInt("n") < 0) return InvalidArgument("arange: n must be >= 0");
      DType t = a.GetDType("dtype");
      if (t != DType::kI32 && t != DType::kI64 && !IsFloating(t))
        return InvalidArgument("arange: dtype must be i32, i64 or floating");
      return std::vector<TypeSpec>{{t, Shape{a.GetInt("n")}}};
    };
    r.Register(std::move(d));
  }
}

}  // namespace zt::ir
