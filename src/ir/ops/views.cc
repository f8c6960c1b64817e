// View ops.
//   reshape(x){shape}: same elements in row-major order with another shape; the output aliases x
//   (no copy). Gradient: reshape back.
//   transpose(x){perm}: out.shape[j] = x.shape[perm[j]], out[i_0..i_r) = x[k] with k[perm[j]] = i_j;
//   a materialised copy, any dtype; perm is a permutation of 0..rank-1. Gradient: transpose by the
//   inverse permutation.
//   split(x){axis, sizes}: one output per size, output i = x's slab [off_i, off_i + sizes[i]) along
//   axis; sizes sum to x.shape[axis]; axis may be negative. Gradient: concat of the output
//   gradients (a zero fill where an output got none).
//   concat(x0, x1, ...){axis}: the inputs joined along axis; same dtype, equal dims except along
//   axis. Gradient: split of dout with the input sizes.
// Invariant: every attribute combination the kernels cannot run is rejected here, naming the
// attribute or the input at fault. The builder helpers return x itself (no node) for identities.
#include "ir/ops/views.h"

#include "ir/ops/constant.h"
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

std::vector<int64_t> InversePermutation(const std::vector<int64_t>& perm) {
  std::vector<int64_t> inv(perm.size(), 0);
  for (size_t j = 0; j < perm.size(); ++j) {
    ZT_CHECK(perm[j] >= 0 && perm[j] < static_cast<int64_t>(perm.size())) << "not a permutation";
    inv[static_cast<size_t>(perm[j])] = static_cast<int64_t>(j);
  }
  return inv;
}

Value* Transpose(Builder& b, Value* x, std::vector<int64_t> perm, const std::string& name) {
  bool identity = static_cast<int>(perm.size()) == x->shape.rank();
  for (size_t j = 0; identity && j < perm.size(); ++j) identity = perm[j] == static_cast<int64_t>(j);
  if (identity) return x;
  return b.Emit1("transpose", {x}, {{"perm", std::move(perm)}}, name);
}

std::vector<Value*> Split(Builder& b, Value* x, int64_t axis, std::vector<int64_t> sizes, const std::string& name) {
  int rank = x->shape.rank();
  if (sizes.size() == 1 && axis >= -rank && axis < rank && sizes[0] == x->shape[static_cast<int>(axis)]) return {x};
  return b.Emit("split", {x}, {{"axis", axis}, {"sizes", std::move(sizes)}}, name);
}

Value* Concat(Builder& b, std::vector<Value*> xs, int64_t axis, const std::string& name) {
  if (xs.size() == 1 && xs[0] != nullptr) {
    int rank = xs[0]->shape.rank();
    if (axis >= -rank && axis < rank) return xs[0];
  }
  return b.Emit1("concat", std::move(xs), {{"axis", axis}}, name);
}

}  // namespace ops

using namespace ops;

namespace {

std::string IntsToString(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

// Resolves a possibly negative `axis` attribute against input i's rank.
StatusOr<int> NormalizeAxis(const char* op, std::span<const TypeSpec> in, int i, const std::string& input_name,
                            int64_t axis) {
  int rank = in[i].shape.rank();
  if (axis < -rank || axis >= rank) {
    return InvalidArgument(std::string(op) + ": attribute 'axis' = " + std::to_string(axis) + " is out of range for input " +
                           std::to_string(i) + " (" + input_name + ") " + TypeToString(in[i]) + "; it must lie in [" +
                           std::to_string(-rank) + ", " + std::to_string(rank) + ")");
  }
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

StatusOr<std::vector<TypeSpec>> InferTranspose(std::span<const TypeSpec> in, const AttrMap& a) {
  const std::vector<int64_t>& perm = a.GetInts("perm");
  const Shape& s = in[0].shape;
  int rank = s.rank();
  if (rank > kMaxTransposeRank) {
    return InvalidArgument("transpose: input 0 (x) " + TypeToString(in[0]) + " has rank " + std::to_string(rank) +
                           "; at most " + std::to_string(kMaxTransposeRank) + " is supported");
  }
  bool ok = static_cast<int>(perm.size()) == rank;
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (size_t j = 0; ok && j < perm.size(); ++j) {
    ok = perm[j] >= 0 && perm[j] < rank && !seen[static_cast<size_t>(perm[j])];
    if (ok) seen[static_cast<size_t>(perm[j])] = true;
  }
  if (!ok) {
    return InvalidArgument("transpose: attribute 'perm' = " + IntsToString(perm) + " must be a permutation of 0.." +
                           std::to_string(rank - 1) + " (each dim of input 0 (x) " + TypeToString(in[0]) +
                           " exactly once)");
  }
  std::vector<int64_t> out(perm.size());
  for (size_t j = 0; j < perm.size(); ++j) out[j] = s[static_cast<int>(perm[j])];
  return std::vector<TypeSpec>{{in[0].dtype, Shape(out)}};
}

StatusOr<std::vector<TypeSpec>> InferSplit(std::span<const TypeSpec> in, const AttrMap& a) {
  ZT_RETURN_IF_ERROR(ExpectRankAtLeast(in, 0, "x", 1));
  ZT_ASSIGN_OR_RETURN(int axis, NormalizeAxis("split", in, 0, "x", a.GetInt("axis")));
  const std::vector<int64_t>& sizes = a.GetInts("sizes");
  const Shape& s = in[0].shape;
  if (sizes.empty()) return InvalidArgument("split: attribute 'sizes' is empty; give at least one piece size");
  int64_t total = 0;
  for (int64_t v : sizes) {
    if (v < 0) return InvalidArgument("split: attribute 'sizes' = " + IntsToString(sizes) + " holds a negative size");
    total += v;
  }
  if (total != s[axis]) {
    return InvalidArgument("split: attribute 'sizes' = " + IntsToString(sizes) + " sums to " + std::to_string(total) +
                           ", but input 0 (x) " + TypeToString(in[0]) + " has " + std::to_string(s[axis]) +
                           " along axis " + std::to_string(axis));
  }
  std::vector<TypeSpec> outs;
  for (int64_t v : sizes) {
    std::vector<int64_t> d = s.dims();
    d[static_cast<size_t>(axis)] = v;
    outs.push_back({in[0].dtype, Shape(d)});
  }
  return outs;
}

StatusOr<std::vector<TypeSpec>> InferConcat(std::span<const TypeSpec> in, const AttrMap& a) {
  ZT_RETURN_IF_ERROR(ExpectRankAtLeast(in, 0, "x0", 1));
  ZT_ASSIGN_OR_RETURN(int axis, NormalizeAxis("concat", in, 0, "x0", a.GetInt("axis")));
  const Shape& s0 = in[0].shape;
  int64_t total = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    std::string name = "x" + std::to_string(i);
    if (i > 0) ZT_RETURN_IF_ERROR(ExpectSameDType(in, 0, static_cast<int>(i), "x0", name.c_str()));
    const Shape& si = in[i].shape;
    bool ok = si.rank() == s0.rank();
    for (int d = 0; ok && d < s0.rank(); ++d) ok = d == axis || si[d] == s0[d];
    if (!ok) {
      return InvalidArgument("concat: input " + std::to_string(i) + " (" + name + ") " + TypeToString(in[i]) +
                             " must have the dims of input 0 (x0) " + TypeToString(in[0]) + " except along axis " +
                             std::to_string(axis));
    }
    total += si[axis];
  }
  std::vector<int64_t> d = s0.dims();
  d[static_cast<size_t>(axis)] = total;
  return std::vector<TypeSpec>{{in[0].dtype, Shape(d)}};
}

std::vector<Value*> TransposeGrad(GradContext& c) {
  if (!IsFloating(c.in(0)->dtype)) return {nullptr};
  return {Transpose(c.b, c.dout[0], InversePermutation(c.attrs().GetInts("perm")), "dx")};
}

std::vector<Value*> SplitGrad(GradContext& c) {
  if (!IsFloating(c.in(0)->dtype)) return {nullptr};
  std::vector<Value*> pieces;
  for (size_t i = 0; i < c.dout.size(); ++i) {
    Value* d = c.dout[i];
    if (d == nullptr) d = Fill(c.b, c.out(static_cast<int>(i))->dtype, c.out(static_cast<int>(i))->shape, 0.0, "dzero");
    pieces.push_back(d);
  }
  return {Concat(c.b, pieces, c.attrs().GetInt("axis"), "dx")};
}

std::vector<Value*> ConcatGrad(GradContext& c) {
  size_t n = c.node.inputs.size();
  std::vector<Value*> g(n, nullptr);
  if (!IsFloating(c.in(0)->dtype)) return g;
  int64_t axis = c.attrs().GetInt("axis");
  int rank = c.in(0)->shape.rank();
  int ax = static_cast<int>(axis < 0 ? axis + rank : axis);
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < n; ++i) sizes.push_back(c.in(static_cast<int>(i))->shape[ax]);
  std::vector<Value*> pieces = Split(c.b, c.dout[0], ax, sizes, "dx");
  for (size_t i = 0; i < n; ++i)
    if (c.need[i]) g[i] = pieces[i];
  return g;
}

}  // namespace

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

void RegisterViewOps(OpRegistry& r) {
  RegisterReshape(r);
  {
    OpDef d;
    d.name = "transpose";
    d.doc = "x with its dims permuted: out.shape[j] = x.shape[perm[j]] (a copy)";
    d.input_names = {"x"};
    d.min_inputs = d.max_inputs = 1;
    d.attrs = {{"perm", AttrType::kInts, std::nullopt}};
    d.infer = InferTranspose;
    d.grad = TransposeGrad;
    d.cost = ElementwiseCost(0);
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "split";
    d.doc = "pieces of x along axis with the given sizes (copies)";
    d.input_names = {"x"};
    d.min_inputs = d.max_inputs = 1;
    d.attrs = {{"axis", AttrType::kInt, std::nullopt}, {"sizes", AttrType::kInts, std::nullopt}};
    d.infer = InferSplit;
    d.grad = SplitGrad;
    d.cost = ElementwiseCost(0);
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "concat";
    d.doc = "the inputs joined along axis (a copy)";
    d.input_names = {"x"};
    d.min_inputs = 1;
    d.max_inputs = -1;
    d.attrs = {{"axis", AttrType::kInt, std::nullopt}};
    d.infer = InferConcat;
    d.grad = ConcatGrad;
    d.cost = ElementwiseCost(0);
    r.Register(std::move(d));
  }
}

}  // namespace zt::ir
