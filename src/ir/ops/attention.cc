// attention(q [B,T,H,D], k [B,S,Hkv,D], v [B,S,Hkv,D]){causal = true, scale = 0}
//     -> (out [B,T,H,D] in q's dtype, lse f32 [B,H,T]); output names {"", "lse"}.
//   Query head h attends with kv head h / (H / Hkv) (HF repeat_kv); H % Hkv == 0.
//   logits[t, s] = scale * <q[t], k[s]>, scale 0 meaning 1/sqrt(D). Causal masking is
//   bottom-right aligned: query t sees keys s <= t + (S - T) (s <= t when S == T); causal needs
//   S >= T so that every query sees at least one key. lse[t] = log sum_s exp(logits[t, s]).
// attention_bwd(dout, q, k, v, out, lse[, dlse]){causal, scale} -> (dq, dk, dv):
//   recomputes p = exp(logits - lse) row by row (no T x S matrix is saved);
//   ds = p * (dout . v - (dout . out - dlse)); dq = scale ds k, dk = scale ds^T q, dv = p^T dout.
//   dlse (f32 [B,H,T], optional) is the gradient flowing into the lse output, if any.
// Cost: forward 4*B*H*T*S*D flops (QK^T and PV), halved when causal (the usual convention: about
// half the pairs are masked); backward 2.5x the forward (five T x S x D products instead of two).
// Invariant: the shape rules reject every input the CPU kernels cannot run.
#include "ir/ops/attention.h"

#include <algorithm>
#include <cmath>

#include "core/mem_category.h"
#include "ir/ops/constant.h"
#include "ir/ops/op_helpers.h"

namespace zt::ir {
namespace ops {

std::vector<Value*> Attention(Builder& b, Value* q, Value* k, Value* v, bool causal, double scale,
                              const std::string& name) {
  return b.Emit("attention", {q, k, v}, {{"causal", causal}, {"scale", scale}}, name);
}

Value* CausalSelfAttention(Builder& b, Value* q, Value* k, Value* v, const std::string& name) {
  return Attention(b, q, k, v, true, 0.0, name)[0];
}

}  // namespace ops

using namespace ops;

namespace {

struct AttnDims {
  int64_t B, T, H, S, Hkv, D;
};

// Checks q, k, v (inputs qi, qi+1, qi+2) and returns the dimensions.
StatusOr<AttnDims> CheckQKV(std::span<const TypeSpec> in, int qi, const AttrMap& a, const char* op) {
  ZT_RETURN_IF_ERROR(ExpectFloating(in, qi, "q"));
  ZT_RETURN_IF_ERROR(ExpectSameDType(in, qi, qi + 1, "q", "k"));
  ZT_RETURN_IF_ERROR(ExpectSameDType(in, qi, qi + 2, "q", "v"));
  ZT_RETURN_IF_ERROR(ExpectRank(in, qi, "q", 4));
  ZT_RETURN_IF_ERROR(ExpectRank(in, qi + 1, "k", 4));
  ZT_RETURN_IF_ERROR(ExpectSameShape(in, qi + 1, qi + 2, "k", "v"));
  const Shape& q = in[qi].shape;
  const Shape& k = in[qi + 1].shape;
  AttnDims d{q[0], q[1], q[2], k[1], k[2], q[3]};
  std::string pre = std::string(op) + ": ";
  if (k[0] != d.B)
    return InvalidArgument(pre + "batch of input " + std::to_string(qi + 1) + " (k) " + k.ToString() +
                           " must equal q's " + q.ToString());
  if (k[3] != d.D)
    return InvalidArgument(pre + "head dim of input " + std::to_string(qi + 1) + " (k) " + k.ToString() +
                           " must equal q's " + q.ToString());
  if (d.D < 1) return InvalidArgument(pre + "head dim of input " + std::to_string(qi) + " (q) must be >= 1");
  if (d.Hkv < 1 || d.H % d.Hkv != 0)
    return InvalidArgument(pre + "heads of input " + std::to_string(qi) + " (q) " + q.ToString() +
                           " must be a multiple of the kv heads of input " + std::to_string(qi + 1) + " (k) " +
                           k.ToString());
  if (d.S < 1) return InvalidArgument(pre + "input " + std::to_string(qi + 1) + " (k) " + k.ToString() + " has no key positions");
  if (a.GetBool("causal") && d.S < d.T)
    return InvalidArgument(pre + "causal attention needs at least as many keys as queries: input " +
                           std::to_string(qi + 1) + " (k) " + k.ToString() + " vs input " + std::to_string(qi) +
                           " (q) " + q.ToString());
  double scale = a.GetFloat("scale");
  if (!std::isfinite(scale)) return InvalidArgument(pre + "scale must be finite (0 means 1/sqrt(D))");
  return d;
}

Status ExpectExact(std::span<const TypeSpec> in, int i, const char* name, const TypeSpec& want, const char* op) {
  if (!(in[i] == want))
    return InvalidArgument(std::string(op) + ": input " + std::to_string(i) + " (" + name + ") " + TypeToString(in[i]) +
                           " must be " + TypeToString(want));
  return OkStatus();
}

double ForwardFlops(const AttnDims& d, bool causal) {
  double f = 4.0 * d.B * d.H * d.T * d.S * d.D;
  return causal ? 0.5 * f : f;
}

std::vector<Value*> AttentionGrad(GradContext& c) {
  Builder& b = c.b;
  Value* dout = c.dout[0];
  Value* dlse = c.dout.size() > 1 ? c.dout[1] : nullptr;
  if (dout == nullptr) dout = Fill(b, c.out(0)->dtype, c.out(0)->shape, 0.0, "dout_zero");
  std::vector<Value*> in = {dout, c.in(0), c.in(1), c.in(2), c.out(0), c.out(1)};
  if (dlse) in.push_back(dlse);
  std::vector<Value*> g = b.Emit("attention_bwd", in,
                                 {{"causal", c.attrs().GetBool("causal")}, {"scale", c.attrs().GetFloat("scale")}},
                                 "attn_bwd");
  return {c.need[0] ? g[0] : nullptr, c.need[1] ? g[1] : nullptr, c.need[2] ? g[2] : nullptr};
}

}  // namespace

void RegisterAttentionOps(OpRegistry& r) {
  {
    OpDef d;
    d.name = "attention";
    d.doc = "softmax(scale q k^T [+ causal mask]) v with grouped-query heads; also returns lse (f32)";
    d.input_names = {"q", "k", "v"};
    d.min_inputs = d.max_inputs = 3;
    d.output_names = {"", "lse"};
    d.attrs = {{"causal", AttrType::kBool, true}, {"scale", AttrType::kFloat, 0.0}};
    d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
      ZT_ASSIGN_OR_RETURN(AttnDims ad, CheckQKV(in, 0, a, "attention"));
      return std::vector<TypeSpec>{in[0], {DType::kF32, Shape{ad.B, ad.H, ad.T}}};
    };
    d.grad = AttentionGrad;
    d.cost = [](const NodeSig& s) {
      Cost c;
      auto ad = CheckQKV(s.inputs, 0, s.attrs, "attention");
      if (ad.ok()) c.flops = ForwardFlops(*ad, s.attrs.GetBool("causal"));
      c.bytes_read = InputBytes(s);
      c.bytes_written = OutputBytes(s);
      return c;
    };
    // Per (b, h) work item: S logits (f64), an output accumulator of D (f64) and a q row (f32).
    // Must match the layout in kernels/cpu/attention.cc.
    d.workspace = [](const NodeSig& s) -> size_t {
      const Shape& q = s.inputs[0].shape;
      const Shape& k = s.inputs[1].shape;
      size_t slot = AlignedBytes(static_cast<size_t>(k[1]) * 8 + static_cast<size_t>(q[3]) * (8 + 4));
      return static_cast<size_t>(q[0] * q[2]) * slot;
    };
    r.Register(std::move(d));
  }
  {
    OpDef d;
    d.name = "attention_bwd";
    d.doc = "gradients (dq, dk, dv) of attention, recomputing probabilities from lse";
    d.input_names = {"dout", "q", "k", "v", "out", "lse", "dlse"};
    d.min_inputs = 6;
    d.max_inputs = 7;
    d.output_names = {"dq", "dk", "dv"};  // output 0 takes the node's name
    d.attrs = {{"causal", AttrType::kBool, true}, {"scale", AttrType::kFloat, 0.0}};
    d.infer = [](std::span<const TypeSpec> in, const AttrMap& a) -> StatusOr<std::vector<TypeSpec>> {
      ZT_ASSIGN_OR_RETURN(AttnDims ad, CheckQKV(in, 1, a, "attention_bwd"));
      ZT_RETURN_IF_ERROR(ExpectExact(in, 0, "dout", in[1], "attention_bwd"));
      ZT_RETURN_IF_ERROR(ExpectExact(in, 4, "out", in[1], "attention_bwd"));
      TypeSpec lse{DType::kF32, Shape{ad.B, ad.H, ad.T}};
      ZT_RETURN_IF_ERROR(ExpectExact(in, 5, "lse", lse, "attention_bwd"));
      if (in.size() == 7) ZT_RETURN_IF_ERROR(ExpectExact(in, 6, "dlse", lse, "attention_bwd"));
      return std::vector<TypeSpec>{in[1], in[2], in[3]};
    };
    d.cost = [](const NodeSig& s) {
      Cost c;
      auto ad = CheckQKV(s.inputs, 1, s.attrs, "attention_bwd");
      if (ad.ok()) c.flops = 2.5 * ForwardFlops(*ad, s.attrs.GetBool("causal"));
      c.bytes_read = InputBytes(s);
      c.bytes_written = OutputBytes(s);
      return c;
    };
    // The larger of two layouts (the rule is shared by every device):
    //  - CPU: per (b, kv head) work item, f32 accumulators for dk and dv (S x D each), f32 rows of
    //    q and dout (D each) and an f64 dq accumulator (D). Must match kernels/cpu/attention.cc.
    //  - CUDA, cuDNN's deterministic fused backward: 2 B H T' S' + 4 B H T' (D + 1) bytes with T',
    //    S' rounded up to 128 (measured on H100/H200 with cuDNN 9.19: 100.9 MB asked at B 4, T 1024,
    //    H 12, D 64; 302.3 MB at B 1, T 2048, H 32, D 128), plus 8 MiB of slack. Less, and cuDNN
    //    declines the case and our slower kernels run.
    d.workspace = [](const NodeSig& s) -> size_t {
      const Shape& q = s.inputs[1].shape;
      const Shape& k = s.inputs[2].shape;
      size_t S = static_cast<size_t>(k[1]), D = static_cast<size_t>(k[3]);
      size_t slot = AlignedBytes(2 * S * D * 4 + D * (4 + 4 + 8));
      size_t cpu = static_cast<size_t>(k[0] * k[2]) * slot;
      auto up128 = [](size_t n) { return (n + 127) / 128 * 128; };
      size_t B = static_cast<size_t>(q[0]), H = static_cast<size_t>(q[2]);
      size_t T2 = up128(static_cast<size_t>(q[1])), S2 = up128(S);
      size_t cudnn = 2 * B * H * T2 * S2 + 4 * B * H * T2 * (D + 1) + (size_t{8} << 20);
      return std::max(cpu, cudnn);
    };
    r.Register(std::move(d));
  }
}

}  // namespace zt::ir
