// LayerNorm ops: definitions, shape rules, backward rule, costs.
//   layernorm(x [..., C], w [C], b [C]){eps = 1e-5} -> (y [..., C], mean f32 [...], rstd f32 [...])
//     y = (x - mean) * rstd * w + b, rstd = 1 / sqrt(var + eps), var biased (as torch LayerNorm).
//     x, w, b share one floating dtype; y has it; mean and rstd are always f32 and carry no
//     gradient.
//   layernorm_bwd(dy, x, w, mean, rstd[, dresidual]) -> (dx [..., C], dw [C], db [C]):
//     xhat = (x - mean) * rstd, g = dy * w,
//     dx = rstd * (g - mean_C(g) - xhat * mean_C(g * xhat)), dw = sum_rows dy * xhat,
//     db = sum_rows dy. dw and db are deterministic (see LayerNormBwdChunks).
//     With dresidual (dy's type): dx = add(dx, dresidual) exactly as the two nodes would give it:
//     dx rounded to the storage dtype, widened, added in f32 and rounded again.
//   add_layernorm(a, b, w, bias){eps} -> (sum, y, mean, rstd): sum = add(a, b) (a and b of one
//     shape and dtype, no broadcasting, rounded as `add` rounds it) and layernorm(sum, w, bias),
//     computed from the ROUNDED sum: bit-identical to the two-node composition. No backward rule:
//     passes/fuse_add_norm.h creates it after autodiff (as it adds dresidual to layernorm_bwd).
// Invariant: infer rejects every input combination the kernels cannot run (C = 0, w or b not
// [C], mixed dtypes, statistics that are not f32 [...], a residual of another type than x).
#include "ir/ops/layernorm.h"

#include <algorithm>

#include "core/mem_category.h"
#include "ir/ops/op_helpers.h"

namespace zt::ir {

namespace {
constexpr int64_t kMinRowsPerChunk = 8;
constexpr int64_t kMaxChunks = 128;
constexpr double kLayerNormFlops = 8;  // per element of the forward
}  // namespace

int64_t LayerNormBwdChunks(int64_t rows) {
  if (rows <= 0) return 0;
  return std::min<int64_t>((rows + kMinRowsPerChunk - 1) / kMinRowsPerChunk, kMaxChunks);
}

size_t LayerNormBwdWorkspaceBytes(int64_t rows, int64_t c) {
  // Two f64 partial sums (dw, db) per chunk and column.
  return AlignedBytes(static_cast<size_t>(LayerNormBwdChunks(rows)) * static_cast<size_t>(c) * 2 * sizeof(double));
}

namespace ops {

LayerNormResult LayerNorm(Builder& b, Value* x, Value* w, Value* bias, double eps, const std::string& name) {
  std::vector<Value*> out = b.Emit("layernorm", {x, w, bias}, {{"eps", eps}}, name);
  return {out[0], out[1], out[2]};
}

AddLayerNormResult AddLayerNorm(Builder& b, Value* a, Value* addend, Value* w, Value* bias, double eps,
                                const std::string& name) {
  std::vector<Value*> out = b.Emit("add_layernorm", {a, addend, w, bias}, {{"eps", eps}}, name);
  return {out[0], out[1], out[2], out[3]};
}

}  // namespace ops

using namespace ops;

namespace {

// Input `i` (named `name`) must be [C] of x's dtype, x (input `x`) being [..., C].
Status ExpectChannelVector(std::span<const TypeSpec> in, int x, int i, const char* name) {
  ZT_RETURN_IF_ERROR(ExpectSameDType(in, x, i, "x", name));
  int64_t c = in[x].shape[-1];
  if (in[i].shape != Shape{c}) {
    return InvalidArgument(std::string("input ") + std::to_string(i) + " (" + name + ") " + TypeToString(in[i]) +
                           " must be [" + std::to_string(c) + "] (the last dim of x " + in[x].shape.ToString() + ")");
  }
  return OkStatus();
}

Status ExpectNormInput(std::span<const TypeSpec> in, int i, const char* name) {
  ZT_RETURN_IF_ERROR(ExpectFloating(in, i, name));
  ZT_RETURN_IF_ERROR(ExpectRankAtLeast(in, i, name, 1));
  if (in[i].shape[-1] == 0) {
    return InvalidArgument(std::string("input ") + std::to_string(i) + " (" + name + ") " + TypeToString(in[i]) +
                           " must have a last (normalized) dim > 0");
  }
  return OkStatus();
}

// A saved statistic: f32 with x's shape less the last dim.
Status ExpectRowStat(std::span<const TypeSpec> in, int x, int i, const char* name) {
  Shape rows = in[x].shape.Slice(0, -1);
  if (in[i].dtype != DType::kF32 || in[i].shape != rows) {
    return InvalidArgument(std::string("input ") + std::to_string(i) + " (" + name + ") " + TypeToString(in[i]) +
                           " must be f32" + rows.ToString() + " (x's shape without its last dim)");
  }
  return OkStatus();
}

Status ExpectEps(const AttrMap& a, const char* op) {
  double eps = a.GetFloat("eps");
  if (!(eps >= 0)) return InvalidArgument(std::string(op) + ": eps must be >= 0, got " + std::to_string(eps));
  return OkStatus();
}

std::vector<Value*> LayerNormGrad(GradContext& c) {
  Value* dy = c.dout[0];  // mean and rstd carry no gradient: dout[1], dout[2] are ignored
  if (dy == nullptr) return {nullptr, nullptr, nullptr};
  std::vector<Value*> g = c.b.Emit("layernorm_bwd", {dy, c.in(0), c.in(1), c.out(1), c.out(2)}, {}, "dx");
  return {c.need[0] ? g[0] : nullptr, c.need[1] ? g[1] : nullptr, c.need[2] ? g[2] : nullptr};
}

}  // namespace

void RegisterLayerNormOps(OpRegistry& r) {
  {
    OpDef d;
    d.name = "layernorm";
    d.doc = "layer normalization over the last dim: (x - mean) * rstd * w + b; also returns mean, rstd (f32)";
    d.input_names = {"x", "w", "b"};
    d.min_inputs = d.max_inputs = 3;
    d.output_names = {"", "mean", "rstd"};
    d.attrs = {{"eps", AttrType::kFloat, 1e-5}};
    d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
      ZT_RETURN_IF_ERROR(ExpectNormInput(in, 0, "x"));
      ZT_RETURN_IF_ERROR(ExpectChannelVector(in, 0, 1, "w"));
      ZT_RETURN_IF_ERROR(ExpectChannelVector(in, 0, 2, "b"));
      ZT_RETURN_IF_ERROR(ExpectEps(a, "layernorm"));
      TypeSpec stat{DType::kF32, in[0].shape.Slice(0, -1)};
      return std::vector<TypeSpec>{in[0], stat, stat};
    };
    d.grad = LayerNormGrad;
    // Per element: mean 1 (add), variance 3 (sub, mul, add), normalize 4 (sub, mul, mul, add).
    d.cost = ElementwiseCost(kLayerNormFlops);
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "add_layernorm";
    d.doc = "sum = a + b (rounded as add), then layernorm(sum, w, bias): returns sum, y, mean, rstd (f32)";
    d.input_names = {"a", "b", "w", "bias"};
    d.min_inputs = d.max_inputs = 4;
    d.output_names = {"", "y", "mean", "rstd"};
    d.attrs = {{"eps", AttrType::kFloat, 1e-5}};
    d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
      ZT_RETURN_IF_ERROR(ExpectNormInput(in, 0, "a"));
      ZT_RETURN_IF_ERROR(ExpectSameDType(in, 0, 1, "a", "b"));
      ZT_RETURN_IF_ERROR(ExpectSameShape(in, 0, 1, "a", "b"));
      ZT_RETURN_IF_ERROR(ExpectChannelVector(in, 0, 2, "w"));
      ZT_RETURN_IF_ERROR(ExpectChannelVector(in, 0, 3, "bias"));
      ZT_RETURN_IF_ERROR(ExpectEps(a, "add_layernorm"));
      TypeSpec stat{DType::kF32, in[0].shape.Slice(0, -1)};
      return std::vector<TypeSpec>{in[0], in[0], stat, stat};
    };
    // No backward rule: the fusion runs after autodiff. One add per element, then layernorm's.
    d.cost = ElementwiseCost(1 + kLayerNormFlops);
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "layernorm_bwd";
    d.doc = "gradients of layernorm: (dx, dw, db) from dy and the saved mean, rstd";
    d.input_names = {"dy", "x", "w", "mean", "rstd", "dresidual"};
    d.min_inputs = 5;
    d.max_inputs = 6;  // dresidual is optional
    d.output_names = {"", "dw", "db"};
    d.infer = [](std::span<const TypeSpec> in, const AttrMap&) -> StatusOr<std::vector<TypeSpec>> {
      ZT_RETURN_IF_ERROR(ExpectNormInput(in, 1, "x"));
      ZT_RETURN_IF_ERROR(ExpectSameDType(in, 1, 0, "x", "dy"));
      ZT_RETURN_IF_ERROR(ExpectSameShape(in, 1, 0, "x", "dy"));
      ZT_RETURN_IF_ERROR(ExpectChannelVector(in, 1, 2, "w"));
      ZT_RETURN_IF_ERROR(ExpectRowStat(in, 1, 3, "mean"));
      ZT_RETURN_IF_ERROR(ExpectRowStat(in, 1, 4, "rstd"));
      if (in.size() == 6) {
        ZT_RETURN_IF_ERROR(ExpectSameDType(in, 1, 5, "x", "dresidual"));
        ZT_RETURN_IF_ERROR(ExpectSameShape(in, 1, 5, "x", "dresidual"));
      }
      return std::vector<TypeSpec>{in[1], in[2], in[2]};
    };
    // Per element: xhat 2, g = dy * w 1, row sums 3, dx 4, dw partial 2, db partial 1; + 1 with
    // dresidual.
    d.cost = [](const NodeSig& s) {
      Cost c = ElementwiseCost(13)(s);
      if (s.inputs.size() == 6) c.flops += static_cast<double>(s.outputs[0].shape.numel());
      return c;
    };
    d.workspace = [](const NodeSig& s) -> size_t {
      const Shape& x = s.inputs[1].shape;
      int64_t c = x[-1];
      return LayerNormBwdWorkspaceBytes(c == 0 ? 0 : x.numel() / c, c);
    };
    r.Register(std::move(d));
  }
}

}  // namespace zt::ir
