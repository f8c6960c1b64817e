// Elementwise ops: definitions, shape rules, backward rules, costs.
//   add(x, y) = x + y, mul(x, y) = x * y: y's shape equals the trailing dims of x's; y repeats
//   over x's leading dims. Same dtype. The result has x's type.
//   scale(x){alpha} = alpha * x.
//   reduce_sum_to(x){shape}: sums x over its leading dims down to `shape` (a suffix of x's shape).
//   broadcast_to(x){shape}: repeats x over new leading dims up to `shape`.
// reduce_sum_to declares a workspace (ReduceSumToWorkspaceBytes) for the device kernel's per-chunk
// partial sums; its size is a function of the shapes only.
#include "ir/ops/elementwise.h"

#include <algorithm>

#include "core/mem_category.h"
#include "ir/ops/op_helpers.h"

namespace zt::ir {

namespace {
// At least this many rows per chunk (so each chunk's partial is worth writing).
constexpr int64_t kReduceMinRowsPerChunk = 32;
// chunks * m stays within this many partials (1 MiB of f64) unless m alone is larger...
constexpr int64_t kReducePartialBudget = 131072;
// ...and there are never more than this many chunks.
constexpr int64_t kReduceMaxChunks = 1024;
}  // namespace

int64_t ReduceSumToChunks(int64_t rows, int64_t m) {
  if (m <= 1 || rows <= 0) return 1;
  int64_t by_rows = (rows + kReduceMinRowsPerChunk - 1) / kReduceMinRowsPerChunk;
  int64_t by_budget = std::max<int64_t>(1, kReducePartialBudget / m);
  return std::max<int64_t>(1, std::min({by_rows, by_budget, kReduceMaxChunks}));
}

size_t ReduceSumToWorkspaceBytes(int64_t rows, int64_t m) {
  int64_t chunks = ReduceSumToChunks(rows, m);
  if (chunks <= 1) return 0;
  return AlignedBytes(static_cast<size_t>(chunks) * static_cast<size_t>(m) * sizeof(double));
}
namespace ops {

Value* Add(Builder& b, Value* x, Value* y, const std::string& name) { return b.Emit1("add", {x, y}, {}, name); }
Value* Mul(Builder& b, Value* x, Value* y, const std::string& name) { return b.Emit1("mul", {x, y}, {}, name); }
Value* Scale(Builder& b, Value* x, double alpha, const std::string& name) {
  return b.Emit1("scale", {x}, {{"alpha", alpha}}, name);
}
Value* ReduceSumTo(Builder& b, Value* x, const Shape& shape, const std::string& name) {
  if (x->shape == shape) return x;
  return b.Emit1("reduce_sum_to", {x}, {{"shape", shape.dims()}}, name);
}
Value* BroadcastTo(Builder& b, Value* x, const Shape& shape, const std::string& name) {
  if (x->shape == shape) return x;
  return b.Emit1("broadcast_to", {x}, {{"shape", shape.dims()}}, name);
}

}  // namespace ops

using namespace ops;

static StatusOr<std::vector<TypeSpec>> InferBinary(std::span<const TypeSpec> in, const AttrMap&) {
  ZT_RETURN_IF_ERROR(ExpectFloating(in, 0, "x"));
  ZT_RETURN_IF_ERROR(ExpectSameDType(in, 0, 1, "x", "y"));
  ZT_RETURN_IF_ERROR(ExpectSuffix(in, 0, 1, "x", "y"));
  return std::vector<TypeSpec>{in[0]};
}

void RegisterElementwiseOps(OpRegistry& r) {
  {
    OpDef d;
    d.name = "add";
    d.doc = "x + y; y broadcast over x's leading dims";
    d.input_names = {"x", "y"};
    d.min_inputs = d.max_inputs = 2;
    d.infer = InferBinary;
    d.grad = [](GradContext& c) -> std::vector<Value*> {
      Value* dy = c.dout[0];
      return {c.need[0] ? dy : nullptr, c.need[1] ? ReduceSumTo(c.b, dy, c.in(1)->shape, "dy") : nullptr};
    };
    d.cost = ElementwiseCost(1);
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "mul";
    d.doc = "x * y; y broadcast over x's leading dims";
    d.input_names = {"x", "y"};
    d.min_inputs = d.max_inputs = 2;
    d.infer = InferBinary;
    d.grad = [](GradContext& c) -> std::vector<Value*> {
      Value* dz = c.dout[0];
      Value* dx = c.need[0] ? Mul(c.b, dz, c.in(1), "dx") : nullptr;
      Value* dy = c.need[1] ? ReduceSumTo(c.b, Mul(c.b, dz, c.in(0), "dy_full"), c.in(1)->shape, "dy") : nullptr;
      return {dx, dy};
    };
    d.cost = ElementwiseCost(1);
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "scale";
    d.doc = "alpha * x";
    d.input_names = {"x"};
    d.min_inputs = d.max_inputs = 1;
    d.attrs = {{"alpha", AttrType::kFloat, std::nullopt}};
    d.infer = [](std::span<const TypeSpec> in, const AttrMap&) -> StatusOr<std::vector<TypeSpec>> {
      ZT_RETURN_IF_ERROR(ExpectFloating(in, 0, "x"));
      return std::vector<TypeSpec>{in[0]};
    };
    d.grad = [](GradContext& c) -> std::vector<Value*> {
      return {Scale(c.b, c.dout[0], c.attrs().GetFloat("alpha"), "dx")};
    };
    d.cost = ElementwiseCost(1);
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "reduce_sum_to";
    d.doc = "sum of x over its leading dims, down to `shape` (a suffix of x's shape)";
    d.input_names = {"x"};
    d.min_inputs = d.max_inputs = 1;
    d.attrs = {{"shape", AttrType::kInts, std::nullopt}};
    d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
      ZT_RETURN_IF_ERROR(ExpectFloating(in, 0, "x"));
      for (int64_t v : a.GetInts("shape"))
        if (v < 0) return InvalidArgument("reduce_sum_to: negative dimension in shape");
      Shape s(a.GetInts("shape"));
      if (!in[0].shape.EndsWith(s))
        return InvalidArgument("reduce_sum_to: shape " + s.ToString() + " is not a suffix of x's " + in[0].shape.ToString());
      return std::vector<TypeSpec>{{in[0].dtype, s}};
    };
    d.grad = [](GradContext& c) -> std::vector<Value*> {
      return {BroadcastTo(c.b, c.dout[0], c.in(0)->shape, "dx")};
    };
    d.cost = [](const NodeSig& s) {
      Cost c;
      c.flops = static_cast<double>(s.inputs[0].shape.numel());
      c.bytes_read = InputBytes(s);
      c.bytes_written = OutputBytes(s);
      return c;
    };
    d.workspace = [](const NodeSig& s) -> size_t {
      int64_t m = s.outputs[0].shape.numel();
      return m == 0 ? 0 : ReduceSumToWorkspaceBytes(s.inputs[0].shape.numel() / m, m);
    };
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "broadcast_to";
    d.doc = "x repeated over new leading dims up to `shape` (x's shape is a suffix of it)";
    d.input_names = {"x"};
    d.min_inputs = d.max_inputs = 1;
    d.attrs = {{"shape", AttrType::kInts, std::nullopt}};
    d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
      ZT_RETURN_IF_ERROR(ExpectFloating(in, 0, "x"));
      for (int64_t v : a.GetInts("shape"))
        if (v < 0) return InvalidArgument("broadcast_to: negative dimension in shape");
      Shape s(a.GetInts("shape"));
      if (!s.EndsWith(in[0].shape))
        return InvalidArgument("broadcast_to: x's shape " + in[0].shape.ToString() + " is not a suffix of " + s.ToString());
      return std::vector<TypeSpec>{{in[0].dtype, s}};
    };
    d.grad = [](GradContext& c) -> std::vector<Value*> {
      return {ReduceSumTo(c.b, c.dout[0], c.in(0)->shape, "dx")};
    };
    d.cost = ElementwiseCost(0);
    r.Register(std::move(d));
  }
}

}  // namespace zt::ir
