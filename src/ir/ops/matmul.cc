// matmul(a, b[, bias]){trans_a, trans_b}:
//   op(a): [..., M, K], op(b): [..., K, N], bias: [N] -> out [..., M, N] (a's dtype).
//   Leading (batch) dims of a and b are equal, or one of them is rank 2 and shared by all batches.
// Backward: d op(a) = dC op(b)^T, d op(b) = op(a)^T dC; a shared operand's gradient is summed
// over the batch (by one flattened matmul when that is possible, else reduce_sum_to).
#include "ir/ops/matmul.h"

#include "ir/ops/elementwise.h"
#include "ir/ops/op_helpers.h"
#include "ir/ops/views.h"

namespace zt::ir {
namespace ops {

Value* Matmul(Builder& b, Value* a, Value* w, bool trans_a, bool trans_b, Value* bias,
              const std::string& name) {
  std::vector<Value*> in = {a, w};
  if (bias) in.push_back(bias);
  return b.Emit1("matmul", in, {{"trans_a", trans_a}, {"trans_b", trans_b}}, name);
}

Value* Linear(Builder& b, Value* x, Value* w, Value* bias, const std::string& name) {
  return Matmul(b, x, w, false, true, bias, name);
}

}  // namespace ops

using namespace ops;

namespace {

struct MatmulDims {
  Shape batch;  // output batch dims
  int64_t m, n, k;
};

StatusOr<MatmulDims> Dims(std::span<const TypeSpec> in, const AttrMap& attrs) {
  ZT_RETURN_IF_ERROR(ExpectFloating(in, 0, "a"));
  ZT_RETURN_IF_ERROR(ExpectSameDType(in, 0, 1, "a", "b"));
  ZT_RETURN_IF_ERROR(ExpectRankAtLeast(in, 0, "a", 2));
  ZT_RETURN_IF_ERROR(ExpectRankAtLeast(in, 1, "b", 2));
  const Shape& a = in[0].shape;
  const Shape& b = in[1].shape;
  bool ta = attrs.GetBool("trans_a"), tb = attrs.GetBool("trans_b");
  Shape ba = a.Slice(0, -2), bb = b.Slice(0, -2);
  MatmulDims d;
  if (ba == bb || bb.rank() == 0) d.batch = ba;
  else if (ba.rank() == 0) d.batch = bb;
  else return InvalidArgument("matmul: batch dims of a " + a.ToString() + " and b " + b.ToString() + " differ");
  d.m = ta ? a[-1] : a[-2];
  int64_t ka = ta ? a[-2] : a[-1];
  int64_t kb = tb ? b[-1] : b[-2];
  d.n = tb ? b[-2] : b[-1];
  if (ka != kb) {
    return InvalidArgument("matmul: inner dims differ: a " + a.ToString() + (ta ? "^T" : "") + " @ b " +
                           b.ToString() + (tb ? "^T" : ""));
  }
  d.k = ka;
  if (in.size() == 3) {
    ZT_RETURN_IF_ERROR(ExpectSameDType(in, 0, 2, "a", "bias"));
    if (in[2].shape != Shape{d.n})
      return InvalidArgument("matmul: bias " + in[2].shape.ToString() + " must be [" + std::to_string(d.n) + "]");
  }
  return d;
}

// Gradient for an operand whose batch dims may have been broadcast: sum down to its shape.
Value* SumToOperand(Builder& b, Value* g, const Value* operand) {
  return ReduceSumTo(b, g, operand->shape, "dsum");
}

std::vector<Value*> MatmulGrad(GradContext& c) {
  Builder& b = c.b;
  Value* A = c.in(0);
  Value* B = c.in(1);
  Value* dC = c.dout[0];
  bool ta = c.attrs().GetBool("trans_a"), tb = c.attrs().GetBool("trans_b");
  std::vector<Value*> g(c.node.inputs.size(), nullptr);
  if (c.need[0]) {
    Value* dA = ta ? Matmul(b, B, dC, tb, true, nullptr, "da") : Matmul(b, dC, B, false, !tb, nullptr, "da");
    g[0] = dA->shape == A->shape ? dA : SumToOperand(b, dA, A);
  }
  if (c.need[1]) {
    bool shared_b = B->shape.rank() == 2 && A->shape.rank() > 2;
    if (shared_b && !ta) {
      // Flatten the batch: A [.., M, K] -> [BM, K], dC [.., M, N] -> [BM, N]; one matmul sums it.
      int64_t rows = A->shape.numel() / A->shape[-1];
      Value* a2 = Reshape(b, A, Shape{rows, A->shape[-1]}, "a_flat");
      Value* dc2 = Reshape(b, dC, Shape{rows, dC->shape[-1]}, "dc_flat");
      g[1] = tb ? Matmul(b, dc2, a2, true, false, nullptr, "db") : Matmul(b, a2, dc2, true, false, nullptr, "db");
    } else {
      Value* dB = tb ? Matmul(b, dC, A, true, ta, nullptr, "db") : Matmul(b, A, dC, !ta, false, nullptr, "db");
      g[1] = dB->shape == B->shape ? dB : SumToOperand(b, dB, B);
    }
  }
  if (c.node.inputs.size() == 3 && c.need[2]) g[2] = ReduceSumTo(b, dC, c.in(2)->shape, "dbias");
  return g;
}

// CUDA (kernels/cuda/matmul.cu): cuBLASLt's workspace (32 MiB, which allows split-K algorithms)
// plus, for problems of >= 1 GFLOP, a 16-byte-pitched copy of every operand whose rows are not a
// multiple of 16 bytes (the kernel carves them first, each rounded to 256 bytes), plus 256 bytes
// of alignment slack. Must cover what MatmulKernel carves.
size_t CudaMatmulWorkspaceBytes(const NodeSig& s) {
  constexpr size_t kCublasLt = size_t{32} << 20, kAlign = 256;
  size_t total = kCublasLt + kAlign;
  auto md = Dims(s.inputs, s.attrs);
  if (!md.ok()) return total;
  double flops = 2.0 * static_cast<double>(md->batch.numel()) * md->m * md->n * md->k;
  if (flops < 1e9) return total;
  const size_t elem = DTypeSize(s.outputs[0].dtype);
  auto padded = [&](const Shape& shape) -> size_t {
    const size_t width = static_cast<size_t>(shape[-1]);
    if (width * elem % 16 == 0) return 0;
    const size_t height = static_cast<size_t>(shape.numel()) / std::max<size_t>(width, 1);
    const size_t per16 = 16 / elem, pitch = (width + per16 - 1) / per16 * per16;
    return (height * pitch * elem + kAlign - 1) / kAlign * kAlign;
  };
  return total + padded(s.inputs[0].shape) + padded(s.inputs[1].shape) + padded(s.outputs[0].shape);
}

}  // namespace

void RegisterMatmulOps(OpRegistry& r) {
  OpDef d;
  d.name = "matmul";
  d.doc = "op(a) @ op(b) [+ bias]; batched over leading dims";
  d.input_names = {"a", "b", "bias"};
  d.min_inputs = 2;
  d.max_inputs = 3;
  d.attrs = {{"trans_a", AttrType::kBool, false}, {"trans_b", AttrType::kBool, false}};
  d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
    ZT_ASSIGN_OR_RETURN(MatmulDims md, Dims(in, a));
    std::vector<int64_t> out = md.batch.dims();
    out.push_back(md.m);
    out.push_back(md.n);
    return std::vector<TypeSpec>{{in[0].dtype, Shape(out)}};
  };
  d.grad = MatmulGrad;
  d.cost = [](const NodeSig& s) {
    auto md = Dims(s.inputs, s.attrs);
    Cost c;
    if (md.ok()) {
      double batch = static_cast<double>(md->batch.numel());
      c.flops = 2.0 * batch * md->m * md->n * md->k + (s.inputs.size() == 3 ? batch * md->m * md->n : 0);
    }
    c.bytes_read = InputBytes(s);
    c.bytes_written = OutputBytes(s);
    return c;
  };
  d.workspace = [](const NodeSig& s) -> size_t {
    if (s.target == Target::kCuda) return CudaMatmulWorkspaceBytes(s);
    if (s.inputs[0].dtype == DType::kF32) return 0;
    // CPU: f32 copies of a, b, bias and out, each aligned.
    size_t total = 0;
    for (auto& t : s.inputs) total += AlignedBytes(static_cast<size_t>(t.shape.numel()) * 4);
    total += AlignedBytes(static_cast<size_t>(s.outputs[0].shape.numel()) * 4);
    return total;
  };
  r.Register(std::move(d));
}

}  // namespace zt::ir
