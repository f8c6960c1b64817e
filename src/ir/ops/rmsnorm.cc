// RMSNorm ops: definitions, shape rules, backward rule, costs.
//   rmsnorm(x [..., C], w [C]){eps = 1e-6} -> (y [..., C], rstd f32 [...])
//     y = x * rstd * w, rstd = 1 / sqrt(mean_C(x^2) + eps), computed in f32 and rounded once to
//     x's dtype (HF LlamaRMSNorm up to that single rounding). x and w share one floating dtype;
//     rstd is always f32 and carries no gradient.
//   rmsnorm_bwd(dy, x, w, rstd[, dresidual]) -> (dx [..., C], dw [C]):
//     xhat = x * rstd, g = dy * w, dx = rstd * (g - xhat * mean_C(g * xhat)), dw = sum_rows dy * xhat.
//     dw is deterministic (see RmsNormBwdChunks). With dresidual (dy's type): dx = add(dx,
//     dresidual) exactly as the two nodes would give it: dx rounded to the storage dtype, widened,
//     added in f32 and rounded again.
//   add_rmsnorm(a, b, w){eps} -> (sum, y, rstd): sum = add(a, b) (a and b of one shape and dtype,
//     no broadcasting, rounded as `add` rounds it) and rmsnorm(sum, w), computed from the ROUNDED
//     sum: bit-identical to the two-node composition. No backward rule: passes/fuse_add_norm.h
//     creates it after autodiff (as it adds dresidual to rmsnorm_bwd).
// Invariant: infer rejects every input combination the kernels cannot run (C = 0, w not [C],
// mixed dtypes, an rstd that is not f32 [...], a residual of another type than x).
#include "ir/ops/rmsnorm.h"

#include <algorithm>

#include "core/mem_category.h"
#include "ir/ops/op_helpers.h"

namespace zt::ir {

namespace {
constexpr int64_t kMinRowsPerChunk = 8;
constexpr int64_t kMaxChunks = 128;
constexpr double kRmsNormFlops = 4;  // per element of the forward
}  // namespace

int64_t RmsNormBwdChunks(int64_t rows) {
  if (rows <= 0) return 0;
  return std::min<int64_t>((rows + kMinRowsPerChunk - 1) / kMinRowsPerChunk, kMaxChunks);
}

size_t RmsNormBwdWorkspaceBytes(int64_t rows, int64_t c) {
  // One f64 partial sum of dw per chunk and column.
  return AlignedBytes(static_cast<size_t>(RmsNormBwdChunks(rows)) * static_cast<size_t>(c) * sizeof(double));
}

namespace ops {

RmsNormResult RmsNorm(Builder& b, Value* x, Value* w, double eps, const std::string& name) {
  std::vector<Value*> out = b.Emit("rmsnorm", {x, w}, {{"eps", eps}}, name);
  return {out[0], out[1]};
}

AddRmsNormResult AddRmsNorm(Builder& b, Value* a, Value* addend, Value* w, double eps, const std::string& name) {
  std::vector<Value*> out = b.Emit("add_rmsnorm", {a, addend, w}, {{"eps", eps}}, name);
  return {out[0], out[1], out[2]};
}

}  // namespace ops

using namespace ops;

namespace {

std::string Describe(std::span<const TypeSpec> in, int i, const char* name) {
  return std::string("input ") + std::to_string(i) + " (" + name + ") " + TypeToString(in[i]);
}

Status ExpectNormInput(std::span<const TypeSpec> in, int i, const char* name) {
  ZT_RETURN_IF_ERROR(ExpectFloating(in, i, name));
  ZT_RETURN_IF_ERROR(ExpectRankAtLeast(in, i, name, 1));
  if (in[i].shape[-1] == 0) return InvalidArgument(Describe(in, i, name) + " must have a last (normalized) dim > 0");
  return OkStatus();
}

// Input `i` (named `name`) must be [C] of x's dtype, x (input `x`) being [..., C].
Status ExpectChannelVector(std::span<const TypeSpec> in, int x, int i, const char* name) {
  ZT_RETURN_IF_ERROR(ExpectSameDType(in, x, i, "x", name));
  int64_t c = in[x].shape[-1];
  if (in[i].shape != Shape{c}) {
    return InvalidArgument(Describe(in, i, name) + " must be [" + std::to_string(c) + "] (the last dim of x " +
                           in[x].shape.ToString() + ")");
  }
  return OkStatus();
}

Status ExpectEps(const AttrMap& a, const char* op) {
  double eps = a.GetFloat("eps");
  if (!(eps >= 0)) return InvalidArgument(std::string(op) + ": eps must be >= 0, got " + std::to_string(eps));
  return OkStatus();
}

std::vector<Value*> RmsNormGrad(GradContext& c) {
  Value* dy = c.dout[0];  // rstd carries no gradient: dout[1] is ignored
  if (dy == nullptr) return {nullptr, nullptr};
  std::vector<Value*> g = c.b.Emit("rmsnorm_bwd", {dy, c.in(0), c.in(1), c.out(1)}, {}, "dx");
  return {c.need[0] ? g[0] : nullptr, c.need[1] ? g[1] : nullptr};
}

}  // namespace

void RegisterRmsNormOps(OpRegistry& r) {
  {
    OpDef d;
    d.name = "rmsnorm";
    d.doc = "RMS normalization over the last dim: x * rstd * w; also returns rstd (f32)";
    d.input_names = {"x", "w"};
    d.min_inputs = d.max_inputs = 2;
    d.output_names = {"", "rstd"};
    d.attrs = {{"eps", AttrType::kFloat, 1e-6}};
    d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
      ZT_RETURN_IF_ERROR(ExpectNormInput(in, 0, "x"));
      ZT_RETURN_IF_ERROR(ExpectChannelVector(in, 0, 1, "w"));
      ZT_RETURN_IF_ERROR(ExpectEps(a, "rmsnorm"));
      return std::vector<TypeSpec>{in[0], TypeSpec{DType::kF32, in[0].shape.Slice(0, -1)}};
    };
    d.grad = RmsNormGrad;
    // Per element: square and add 2, y = x * rstd * w 2.
    d.cost = ElementwiseCost(kRmsNormFlops);
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "add_rmsnorm";
    d.doc = "sum = a + b (rounded as add), then rmsnorm(sum, w): returns sum, y, rstd (f32)";
    d.input_names = {"a", "b", "w"};
    d.min_inputs = d.max_inputs = 3;
    d.output_names = {"", "y", "rstd"};
    d.attrs = {{"eps", AttrType::kFloat, 1e-6}};
    d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
      ZT_RETURN_IF_ERROR(ExpectNormInput(in, 0, "a"));
      ZT_RETURN_IF_ERROR(ExpectSameDType(in, 0, 1, "a", "b"));
      ZT_RETURN_IF_ERROR(ExpectSameShape(in, 0, 1, "a", "b"));
      ZT_RETURN_IF_ERROR(ExpectChannelVector(in, 0, 2, "w"));
      ZT_RETURN_IF_ERROR(ExpectEps(a, "add_rmsnorm"));
      return std::vector<TypeSpec>{in[0], in[0], TypeSpec{DType::kF32, in[0].shape.Slice(0, -1)}};
    };
    // No backward rule: the fusion runs after autodiff. One add per element, then rmsnorm's.
    d.cost = ElementwiseCost(1 + kRmsNormFlops);
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "rmsnorm_bwd";
    d.doc = "gradients of rmsnorm: (dx, dw) from dy and the saved rstd";
    d.input_names = {"dy", "x", "w", "rstd", "dresidual"};
    d.min_inputs = 4;
    d.max_inputs = 5;  // dresidual is optional
    d.output_names = {"", "dw"};
    d.infer = [](std::span<const TypeSpec> in, const AttrMap&) -> StatusOr<std::vector<TypeSpec>> {
      ZT_RETURN_IF_ERROR(ExpectNormInput(in, 1, "x"));
      ZT_RETURN_IF_ERROR(ExpectSameDType(in, 1, 0, "x", "dy"));
      ZT_RETURN_IF_ERROR(ExpectSameShape(in, 1, 0, "x", "dy"));
      ZT_RETURN_IF_ERROR(ExpectChannelVector(in, 1, 2, "w"));
      Shape rows = in[1].shape.Slice(0, -1);
      if (in[3].dtype != DType::kF32 || in[3].shape != rows) {
        return InvalidArgument(Describe(in, 3, "rstd") + " must be f32" + rows.ToString() +
                               " (x's shape without its last dim)");
      }
      if (in.size() == 5) {
        ZT_RETURN_IF_ERROR(ExpectSameDType(in, 1, 4, "x", "dresidual"));
        ZT_RETURN_IF_ERROR(ExpectSameShape(in, 1, 4, "x", "dresidual"));
      }
      return std::vector<TypeSpec>{in[1], in[2]};
    };
    // Per element: xhat 1, g = dy * w 1, row sum 2, dx 3, dw partial 2; + 1 with dresidual.
    d.cost = [](const NodeSig& s) {
      Cost c = ElementwiseCost(9)(s);
      if (s.inputs.size() == 5) c.flops += static_cast<double>(s.outputs[0].shape.numel());
      return c;
    };
    d.workspace = [](const NodeSig& s) -> size_t {
      const Shape& x = s.inputs[1].shape;
      int64_t c = x[-1];
      return RmsNormBwdWorkspaceBytes(c == 0 ? 0 : x.numel() / c, c);
    };
    r.Register(std::move(d));
  }
}

}  // namespace zt::ir
