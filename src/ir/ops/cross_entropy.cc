// Cross-entropy ops: definitions, shape rules, backward rules, costs.
//   cross_entropy(logits [..., V] float, targets i32|i64 [...]){classes = 0, ignore_index = -100}
//     -> (loss f32 [], lse f32 [...]). With n = classes (0: n = V) the valid columns are [0, n):
//     lse = log sum_{v < n} exp(logits[..., v]) (max-subtracted); loss = mean over rows with
//     targets != ignore_index of (lse - logits[target]), summed in double; 0 when every target is
//     ignored. Columns >= n (padding of the vocabulary) are never read. A target outside [0, n)
//     that is not ignore_index is a bug in the data and CHECK-fails in the kernel.
//   cross_entropy_bwd(dloss f32 [], logits, targets, lse){classes, ignore_index} -> dlogits
//     (logits' dtype): (softmax - onehot(target)) * dloss / count on counted rows and columns
//     < n, zeros on ignored rows and on columns >= n, count = number of non-ignored targets (0 rows
//     counted: all zeros).
// Invariant: only the loss carries a gradient; lse is a saved statistic whose gradient (if any
// flows) is ignored, and targets are not differentiable. The verifier keeps 0 <= classes <= V.
#include "ir/ops/cross_entropy.h"

#include "core/check.h"
#include "core/mem_category.h"
#include "ir/ops/op_helpers.h"

namespace zt::ir {
namespace ops {

Value* CrossEntropy(Builder& b, Value* logits, Value* targets, int64_t ignore_index, const std::string& name,
                    int64_t classes) {
  return b.Emit("cross_entropy", {logits, targets}, {{"classes", classes}, {"ignore_index", ignore_index}}, name)[0];
}

Value* CrossEntropyBwd(Builder& b, Value* dloss, Value* logits, Value* targets, Value* lse,
                       int64_t ignore_index, const std::string& name, int64_t classes) {
  return b.Emit1("cross_entropy_bwd", {dloss, logits, targets, lse},
                 {{"classes", classes}, {"ignore_index", ignore_index}}, name);
}

}  // namespace ops

size_t CrossEntropyWorkspaceBytes(int64_t rows) { return AlignedBytes(static_cast<size_t>(rows) * sizeof(double)); }

int64_t CrossEntropyClasses(const AttrMap& attrs, int64_t v) {
  const int64_t n = attrs.GetInt("classes");
  ZT_CHECK(n >= 0 && n <= v) << "cross_entropy: classes " << n << " outside [0, V = " << v
                             << "] (the verifier rejects such nodes)";
  return n == 0 ? v : n;
}

using namespace ops;

namespace {

// Flops per valid logit: max, subtract, exp, add (forward); subtract, exp, subtract, multiply
// (backward). Padding columns cost no flops (the backward only writes zeros there).
constexpr double kFlopsPerLogit = 4;

// Checks the `classes` attribute against logits (input li): 0 <= classes <= V.
Status CheckClasses(std::span<const TypeSpec> in, int li, const AttrMap& a) {
  const int64_t n = a.GetInt("classes"), v = in[li].shape[-1];
  if (n < 0 || n > v) {
    return InvalidArgument("attribute 'classes' = " + std::to_string(n) + " must be in [0, " + std::to_string(v) +
                           "], the last dimension of input " + std::to_string(li) + " (logits) " +
                           TypeToString(in[li]) + " (0: every column is a class)");
  }
  return OkStatus();
}

// Cost of either op whose logits are input li: kFlopsPerLogit per valid logit (rows x classes);
// every input and output is read or written once, except the padding columns of the logits,
// which are never read.
Cost CrossEntropyCost(const NodeSig& s, int li) {
  const TypeSpec& logits = s.inputs[li];
  const int64_t v = logits.shape[-1];
  const int64_t rows = v == 0 ? 0 : logits.shape.numel() / v;
  const int64_t padding = v - CrossEntropyClasses(s.attrs, v);
  Cost c;
  c.flops = kFlopsPerLogit * static_cast<double>(rows) * static_cast<double>(v - padding);
  c.bytes_read = InputBytes(s) - Bytes(rows * padding, logits.dtype);
  c.bytes_written = OutputBytes(s);
  return c;
}

// Checks logits (input li) and targets (input ti): targets' shape is logits' without the last dim.
Status CheckLogitsTargets(std::span<const TypeSpec> in, int li, int ti) {
  ZT_RETURN_IF_ERROR(ExpectFloating(in, li, "logits"));
  ZT_RETURN_IF_ERROR(ExpectRankAtLeast(in, li, "logits", 1));
  ZT_RETURN_IF_ERROR(ExpectIndex(in, ti, "targets"));
  if (in[li].shape[-1] < 1) {
    return InvalidArgument("input " + std::to_string(li) + " (logits) " + TypeToString(in[li]) +
                           " must have at least one class in its last dimension");
  }
  if (in[ti].shape != in[li].shape.Slice(0, -1)) {
    return InvalidArgument("input " + std::to_string(ti) + " (targets) " + TypeToString(in[ti]) +
                           " must have the shape of input " + std::to_string(li) + " (logits) " +
                           TypeToString(in[li]) + " without its last dimension, " +
                           in[li].shape.Slice(0, -1).ToString());
  }
  return OkStatus();
}

StatusOr<std::vector<TypeSpec>> InferCrossEntropy(std::span<const TypeSpec> in, const AttrMap& a) {
  ZT_RETURN_IF_ERROR(CheckLogitsTargets(in, 0, 1));
  ZT_RETURN_IF_ERROR(CheckClasses(in, 0, a));
  return std::vector<TypeSpec>{{DType::kF32, Shape{}}, {DType::kF32, in[1].shape}};
}

StatusOr<std::vector<TypeSpec>> InferCrossEntropyBwd(std::span<const TypeSpec> in, const AttrMap& a) {
  if (in[0].dtype != DType::kF32 || in[0].shape.rank() != 0)
    return InvalidArgument("input 0 (dloss) " + TypeToString(in[0]) + " must be f32[] (a scalar)");
  ZT_RETURN_IF_ERROR(CheckLogitsTargets(in, 1, 2));
  ZT_RETURN_IF_ERROR(CheckClasses(in, 1, a));
  if (in[3].dtype != DType::kF32 || in[3].shape != in[2].shape) {
    return InvalidArgument("input 3 (lse) " + TypeToString(in[3]) + " must be f32" + in[2].shape.ToString() +
                           ", the shape of input 2 (targets)");
  }
  return std::vector<TypeSpec>{in[1]};
}

}  // namespace

void RegisterCrossEntropyOps(OpRegistry& r) {
  {
    OpDef d;
    d.name = "cross_entropy";
    d.doc = "mean over non-ignored targets of -log softmax(logits[..., :classes])[target]; also lse per row";
    d.input_names = {"logits", "targets"};
    d.min_inputs = d.max_inputs = 2;
    d.output_names = {"", "lse"};
    d.attrs = {{"classes", AttrType::kInt, AttrValue(int64_t{0})},
               {"ignore_index", AttrType::kInt, AttrValue(int64_t{-100})}};
    d.infer = InferCrossEntropy;
    d.nondiff_inputs = {1};
    d.grad = [](GradContext& c) -> std::vector<Value*> {
      // dout[1] (a gradient of lse) is deliberately ignored: lse is a saved statistic.
      if (!c.need[0] || c.dout[0] == nullptr) return {nullptr, nullptr};
      return {CrossEntropyBwd(c.b, c.dout[0], c.in(0), c.in(1), c.out(1), c.attrs().GetInt("ignore_index"),
                              "dlogits", c.attrs().GetInt("classes")),
              nullptr};
    };
    d.cost = [](const NodeSig& s) { return CrossEntropyCost(s, 0); };
    d.workspace = [](const NodeSig& s) -> size_t { return CrossEntropyWorkspaceBytes(s.inputs[1].shape.numel()); };
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "cross_entropy_bwd";
    d.doc = "(softmax(logits) - onehot(targets)) * dloss / count; zero rows where targets == ignore_index, zero "
            "columns >= classes";
    d.input_names = {"dloss", "logits", "targets", "lse"};
    d.min_inputs = d.max_inputs = 4;
    d.attrs = {{"classes", AttrType::kInt, AttrValue(int64_t{0})},
               {"ignore_index", AttrType::kInt, AttrValue(int64_t{-100})}};
    d.infer = InferCrossEntropyBwd;
    d.nondiff_inputs = {2};
    d.cost = [](const NodeSig& s) { return CrossEntropyCost(s, 1); };
    r.Register(std::move(d));
  }
}

}  // namespace zt::ir
