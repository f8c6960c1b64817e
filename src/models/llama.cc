// Llama forward graph. The head's logits cover the vocabulary padded per BuildOptions (PadHead);
// the loss counts the first V columns only.
#include "models/llama.h"

#include <string>

#include "ir/ops/activation.h"
#include "ir/ops/attention.h"
#include "ir/ops/cross_entropy.h"
#include "ir/ops/elementwise.h"
#include "ir/ops/embedding.h"
#include "ir/ops/matmul.h"
#include "ir/ops/rmsnorm.h"
#include "ir/ops/rope.h"
#include "ir/ops/views.h"

namespace zt::models {

using namespace ir::ops;
using ir::Value;

Status ValidateLlama(const LlamaConfig& c, const BuildOptions& o) {
  ZT_RETURN_IF_ERROR(RequirePositive(c.vocab_size, "Llama", "vocab_size"));
  ZT_RETURN_IF_ERROR(RequirePositive(c.hidden_size, "Llama", "hidden_size"));
  ZT_RETURN_IF_ERROR(RequirePositive(c.intermediate_size, "Llama", "intermediate_size"));
  ZT_RETURN_IF_ERROR(RequirePositive(c.num_hidden_layers, "Llama", "num_hidden_layers"));
  ZT_RETURN_IF_ERROR(RequirePositive(c.num_attention_heads, "Llama", "num_attention_heads"));
  ZT_RETURN_IF_ERROR(RequirePositive(c.num_key_value_heads, "Llama", "num_key_value_heads"));
  ZT_RETURN_IF_ERROR(RequirePositive(c.max_position_embeddings, "Llama", "max_position_embeddings"));
  ZT_RETURN_IF_ERROR(RequirePositive(o.batch, "Llama", "batch size"));
  ZT_RETURN_IF_ERROR(RequirePositive(o.seq, "Llama", "sequence length"));
  ZT_RETURN_IF_ERROR(ValidateBuildOptions(o, "Llama"));
  if (c.hidden_size % c.num_attention_heads != 0)
    return InvalidArgument("Llama config: hidden_size must be divisible by num_attention_heads");
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    return InvalidArgument("Llama config: num_attention_heads must be divisible by num_key_value_heads");
  if ((c.hidden_size / c.num_attention_heads) % 2 != 0)
    return InvalidArgument("Llama config: the head dimension hidden_size/num_attention_heads must be even for RoPE");
  if (!(c.rope_theta > 0)) return InvalidArgument("Llama config: rope_theta must be > 0");
  if (!(c.rms_norm_eps > 0)) return InvalidArgument("Llama config: rms_norm_eps must be > 0");
  if (o.seq > c.max_position_embeddings)
    return InvalidArgument("sequence length " + std::to_string(o.seq) + " exceeds max_position_embeddings " +
                           std::to_string(c.max_position_embeddings));
  return OkStatus();
}

StatusOr<BuiltModel> BuildLlama(ir::Builder& b, const LlamaConfig& c, const BuildOptions& o) {
  ZT_RETURN_IF_ERROR(ValidateLlama(c, o));
  const int64_t B = o.batch, T = o.seq, C = c.hidden_size, H = c.num_attention_heads,
                Hkv = c.num_key_value_heads, D = C / H, I = c.intermediate_size, V = c.vocab_size;
  const DType dt = o.dtype;
  BuiltModel m;
  auto param = [&](const std::string& name, Shape s) {
    Value* p = b.Param(name, dt, std::move(s));
    m.params.push_back(p);
    return p;
  };
  m.tokens = b.Input("tokens", DType::kI32, Shape{B, T});
  m.targets = b.Input("targets", DType::kI32, Shape{B, T});
  Value* embed = param("model.embed_tokens.weight", Shape{V, C});
  Value* x = Embedding(b, m.tokens, embed, "embed");
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    ir::Builder::Scope s(b, "layer" + std::to_string(l));
    Value* in_norm = param(p + "input_layernorm.weight", Shape{C});
    Value* wq = param(p + "self_attn.q_proj.weight", Shape{H * D, C});
    Value* wk = param(p + "self_attn.k_proj.weight", Shape{Hkv * D, C});
    Value* wv = param(p + "self_attn.v_proj.weight", Shape{Hkv * D, C});
    Value* wo = param(p + "self_attn.o_proj.weight", Shape{C, H * D});
    Value* post_norm = param(p + "post_attention_layernorm.weight", Shape{C});
    Value* wg = param(p + "mlp.gate_proj.weight", Shape{I, C});
    Value* wu = param(p + "mlp.up_proj.weight", Shape{I, C});
    Value* wd = param(p + "mlp.down_proj.weight", Shape{C, I});

    Value* h = RmsNorm(b, x, in_norm, c.rms_norm_eps, "input_norm").y;
    Value* q = Rope(b, Reshape(b, Linear(b, h, wq, nullptr, "q_proj"), Shape{B, T, H, D}, "q"), c.rope_theta, "q_rope");
    Value* k = Rope(b, Reshape(b, Linear(b, h, wk, nullptr, "k_proj"), Shape{B, T, Hkv, D}, "k"), c.rope_theta, "k_rope");
    Value* v = Reshape(b, Linear(b, h, wv, nullptr, "v_proj"), Shape{B, T, Hkv, D}, "v");
    Value* a = Reshape(b, CausalSelfAttention(b, q, k, v, "attn"), Shape{B, T, H * D}, "attn_out");
    x = Add(b, x, Linear(b, a, wo, nullptr, "o_proj"), "res_attn");
    h = RmsNorm(b, x, post_norm, c.rms_norm_eps, "post_norm").y;
    Value* f = SwiGlu(b, Linear(b, h, wg, nullptr, "gate_proj"), Linear(b, h, wu, nullptr, "up_proj"), "swiglu");
    x = Add(b, x, Linear(b, f, wd, nullptr, "down_proj"), "res_mlp");
  }
  Value* norm = param("model.norm.weight", Shape{C});
  Value* head = c.tie_word_embeddings ? embed : param("lm_head.weight", Shape{V, C});
  {
    ir::Builder::Scope s(b, "head");
    Value* h = RmsNorm(b, x, norm, c.rms_norm_eps, "norm").y;
    // Over the padded vocabulary: head's zero-padded copy (the embedding reads its parameter).
    m.logits = Linear(b, h, PadHead(b, head, o.vocab_multiple, B * T, m), nullptr, "logits");
    m.loss = CrossEntropy(b, m.logits, m.targets, -100, "loss", V);
  }
  return m;
}

}  // namespace zt::models
