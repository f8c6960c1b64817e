// Embedding ops: definitions, shape rules, backward rules, costs.
//   embedding(ids i32|i64 [...], table [V, C]) -> out [..., C] (table's dtype):
//     out[p, :] = table[ids[p], :]. ids are not differentiable; an id outside [0, V) is a bug in the
//     data and CHECK-fails in the kernel (never an out-of-bounds read).
//   embedding_bwd(ids [...], dout [..., C]){num_embeddings: V} -> dtable [V, C] (dout's dtype):
//     zeros, then dtable[ids[p], :] += dout[p, :], summed in position order (deterministic).
// Invariant: embedding_bwd is the adjoint of embedding in `table`, and embedding is the adjoint
// of embedding_bwd in `dout`, so each one's backward rule emits the other.
#include "ir/ops/embedding.h"

#include "core/mem_category.h"
#include "ir/ops/op_helpers.h"

namespace zt::ir {
namespace ops {

Value* Embedding(Builder& b, Value* ids, Value* table, const std::string& name) {
  return b.Emit1("embedding", {ids, table}, {}, name);
}

Value* EmbeddingBwd(Builder& b, Value* ids, Value* dout, int64_t num_embeddings, const std::string& name) {
  return b.Emit1("embedding_bwd", {ids, dout}, {{"num_embeddings", num_embeddings}}, name);
}

}  // namespace ops

size_t EmbeddingBwdWorkspaceBytes(int64_t num_ids, int64_t num_embeddings) {
  return AlignedBytes(static_cast<size_t>(num_embeddings + 1) * sizeof(int64_t)) +
         AlignedBytes(static_cast<size_t>(num_ids) * sizeof(int64_t));
}

using namespace ops;

namespace {

StatusOr<std::vector<TypeSpec>> InferEmbedding(std::span<const TypeSpec> in, const AttrMap&) {
  ZT_RETURN_IF_ERROR(ExpectIndex(in, 0, "ids"));
  ZT_RETURN_IF_ERROR(ExpectFloating(in, 1, "table"));
  ZT_RETURN_IF_ERROR(ExpectRank(in, 1, "table", 2));
  std::vector<int64_t> out = in[0].shape.dims();
  out.push_back(in[1].shape[1]);
  return std::vector<TypeSpec>{{in[1].dtype, Shape(out)}};
}

StatusOr<std::vector<TypeSpec>> InferEmbeddingBwd(std::span<const TypeSpec> in, const AttrMap& a) {
  ZT_RETURN_IF_ERROR(ExpectIndex(in, 0, "ids"));
  ZT_RETURN_IF_ERROR(ExpectFloating(in, 1, "dout"));
  ZT_RETURN_IF_ERROR(ExpectRank(in, 1, "dout", in[0].shape.rank() + 1));
  const Shape& ids = in[0].shape;
  const Shape& dout = in[1].shape;
  if (dout.Slice(0, -1) != ids) {
    return InvalidArgument("input 1 (dout) " + TypeToString(in[1]) + " must be the shape of input 0 (ids) " +
                           TypeToString(in[0]) + " plus one trailing dimension C");
  }
  int64_t v = a.GetInt("num_embeddings");
  if (v < 0) return InvalidArgument("embedding_bwd: num_embeddings must be >= 0, is " + std::to_string(v));
  return std::vector<TypeSpec>{{in[1].dtype, Shape{v, dout[-1]}}};
}

}  // namespace

void RegisterEmbeddingOps(OpRegistry& r) {
  {
    OpDef d;
    d.name = "embedding";
    d.doc = "rows of table [V, C] gathered at integer ids [...] -> [..., C]";
    d.input_names = {"ids", "table"};
    d.min_inputs = d.max_inputs = 2;
    d.infer = InferEmbedding;
    d.nondiff_inputs = {0};
    d.grad = [](GradContext& c) -> std::vector<Value*> {
      if (!c.need[1] || c.dout[0] == nullptr) return {nullptr, nullptr};
      return {nullptr, EmbeddingBwd(c.b, c.in(0), c.dout[0], c.in(1)->shape[0], "dtable")};
    };
    // A gather: reads the ids and the rows it copies (not the whole table), writes the output.
    d.cost = [](const NodeSig& s) {
      Cost c;
      c.bytes_read = Bytes(s.inputs[0].shape.numel(), s.inputs[0].dtype) + OutputBytes(s);
      c.bytes_written = OutputBytes(s);
      return c;
    };
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "embedding_bwd";
    d.doc = "zeros [num_embeddings, C], then dout [..., C] rows added at their ids [...]";
    d.input_names = {"ids", "dout"};
    d.min_inputs = d.max_inputs = 2;
    d.attrs = {{"num_embeddings", AttrType::kInt, std::nullopt}};
    d.infer = InferEmbeddingBwd;
    d.nondiff_inputs = {0};
    d.grad = [](GradContext& c) -> std::vector<Value*> {
      if (!c.need[1] || c.dout[0] == nullptr) return {nullptr, nullptr};
      return {nullptr, Embedding(c.b, c.in(0), c.dout[0], "ddout")};
    };
    // One add per element of dout; reads ids and dout, writes the whole [V, C] gradient.
    d.cost = [](const NodeSig& s) {
      Cost c;
      c.flops = static_cast<double>(s.inputs[1].shape.numel());
      c.bytes_read = InputBytes(s);
      c.bytes_written = OutputBytes(s);
      return c;
    };
    d.workspace = [](const NodeSig& s) -> size_t {
      return EmbeddingBwdWorkspaceBytes(s.inputs[0].shape.numel(), s.attrs.GetInt("num_embeddings"));
    };
    r.Register(std::move(d));
  }
}

}  // namespace zt::ir
