// Optimizer utility ops: sum_squares, accumulate, zero (semantics in the header).
#include "ir/ops/optim_utils.h"

#include "ir/ops/op_helpers.h"

namespace zt::ir {
namespace ops {

Value* SumSquares(Builder& b, const std::vector<Value*>& xs, const std::string& name) {
  return b.Emit1("sum_squares", xs, {}, name);
}
Value* Accumulate(Builder& b, Value* acc, Value* x, const std::string& name) {
  return b.Emit1("accumulate", {acc, x}, {}, name);
}
Value* Zero(Builder& b, Value* x, const std::string& name) { return b.Emit1("zero", {x}, {}, name); }

}  // namespace ops

int64_t SumSquaresPartials(std::span<const TypeSpec> inputs) {
  int64_t n = 0;
  for (const TypeSpec& t : inputs) n += (t.shape.numel() + kSumSquaresChunk - 1) / kSumSquaresChunk;
  return n;
}

void RegisterOptimUtilsOps(OpRegistry& r) {
  {
    OpDef d;
    d.name = "sum_squares";
    d.doc = "sum of squares of all elements of all inputs (f32 scalar)";
    d.input_names = {"x"};
    d.min_inputs = 1;
    d.max_inputs = -1;
    d.infer = [](std::span<const TypeSpec> in, const AttrMap&) -> StatusOr<std::vector<TypeSpec>> {
      for (int i = 0; i < static_cast<int>(in.size()); ++i) ZT_RETURN_IF_ERROR(ops::ExpectFloating(in, i, "x"));
      return std::vector<TypeSpec>{{DType::kF32, Shape{}}};
    };
    d.cost = [](const NodeSig& s) {
      Cost c;
      for (auto& t : s.inputs) c.flops += 2.0 * static_cast<double>(t.shape.numel());
      c.bytes_read = ops::InputBytes(s);
      c.bytes_written = 4;
      return c;
    };
    d.workspace = [](const NodeSig& s) -> size_t {
      return AlignedBytes(SumSquaresPartials(s.inputs) * sizeof(double));
    };
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "accumulate";
    d.doc = "acc += x in place (acc f32)";
    d.input_names = {"acc", "x"};
    d.min_inputs = d.max_inputs = 2;
    d.infer = [](std::span<const TypeSpec> in, const AttrMap&) -> StatusOr<std::vector<TypeSpec>> {
      if (in[0].dtype != DType::kF32) return InvalidArgument("accumulate: input 0 (acc) must be f32");
      ZT_RETURN_IF_ERROR(ops::ExpectFloating(in, 1, "x"));
      ZT_RETURN_IF_ERROR(ops::ExpectSameShape(in, 0, 1, "acc", "x"));
      return std::vector<TypeSpec>{in[0]};
    };
    d.cost = ops::ElementwiseCost(1);
    d.aliases = {{0, 0, AliasKind::kInPlace}};
    d.side_effects = true;
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "zero";
    d.doc = "x = 0 in place";
    d.input_names = {"x"};
    d.min_inputs = d.max_inputs = 1;
    d.infer = [](std::span<const TypeSpec> in, const AttrMap&) -> StatusOr<std::vector<TypeSpec>> {
      return std::vector<TypeSpec>{in[0]};
    };
    d.cost = [](const NodeSig& s) { return Cost{0, 0, ops::OutputBytes(s)}; };
    d.aliases = {{0, 0, AliasKind::kInPlace}};
    d.side_effects = true;
    r.Register(std::move(d));
  }
}

}  // namespace zt::ir
