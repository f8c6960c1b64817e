// GPT-2 forward graph. The head's logits cover the vocabulary padded per BuildOptions (PadHead);
// the loss counts the first V columns only.
#include "models/gpt2.h"

#include <string>

#include "ir/ops/activation.h"
#include "ir/ops/attention.h"
#include "ir/ops/cross_entropy.h"
#include "ir/ops/constant.h"
#include "ir/ops/elementwise.h"
#include "ir/ops/embedding.h"
#include "ir/ops/layernorm.h"
#include "ir/ops/matmul.h"
#include "ir/ops/views.h"

namespace zt::models {

using namespace ir::ops;
using ir::Value;

Status ValidateGpt2(const Gpt2Config& c, const BuildOptions& o) {
  ZT_RETURN_IF_ERROR(RequirePositive(c.vocab_size, "GPT-2", "vocab_size"));
  ZT_RETURN_IF_ERROR(RequirePositive(c.n_positions, "GPT-2", "n_positions"));
  ZT_RETURN_IF_ERROR(RequirePositive(c.n_embd, "GPT-2", "n_embd"));
  ZT_RETURN_IF_ERROR(RequirePositive(c.n_layer, "GPT-2", "n_layer"));
  ZT_RETURN_IF_ERROR(RequirePositive(c.n_head, "GPT-2", "n_head"));
  ZT_RETURN_IF_ERROR(RequirePositive(o.batch, "GPT-2", "batch size"));
  ZT_RETURN_IF_ERROR(RequirePositive(o.seq, "GPT-2", "sequence length"));
  ZT_RETURN_IF_ERROR(ValidateBuildOptions(o, "GPT-2"));
  if (c.n_embd % c.n_head != 0)
    return InvalidArgument("GPT-2 config: n_embd (" + std::to_string(c.n_embd) + ") must be divisible by n_head (" +
                           std::to_string(c.n_head) + ")");
  if (o.seq > c.n_positions)
    return InvalidArgument("sequence length " + std::to_string(o.seq) + " exceeds the model's n_positions " +
                           std::to_string(c.n_positions));
  if (!(c.layer_norm_epsilon > 0)) return InvalidArgument("GPT-2 config: layer_norm_epsilon must be > 0");
  return OkStatus();
}

StatusOr<BuiltModel> BuildGpt2(ir::Builder& b, const Gpt2Config& c, const BuildOptions& o) {
  ZT_RETURN_IF_ERROR(ValidateGpt2(c, o));
  const int64_t B = o.batch, T = o.seq, C = c.n_embd, H = c.n_head, D = C / H, V = c.vocab_size;
  const DType dt = o.dtype;
  BuiltModel m;
  auto param = [&](const std::string& name, Shape s) {
    Value* p = b.Param(name, dt, std::move(s));
    m.params.push_back(p);
    return p;
  };
  m.tokens = b.Input("tokens", DType::kI32, Shape{B, T});
  m.targets = b.Input("targets", DType::kI32, Shape{B, T});

  Value* wte = param("transformer.wte.weight", Shape{V, C});
  Value* wpe = param("transformer.wpe.weight", Shape{c.n_positions, C});
  Value* x;
  {
    ir::Builder::Scope s(b, "embed");
    Value* pos = Arange(b, T, DType::kI32, "positions");
    x = Add(b, Embedding(b, m.tokens, wte, "tok"), Embedding(b, pos, wpe, "pos"), "x");
  }
  for (int64_t l = 0; l < c.n_layer; ++l) {
    std::string p = "transformer.h." + std::to_string(l) + ".";
    ir::Builder::Scope s(b, "h" + std::to_string(l));
    Value* ln1_w = param(p + "ln_1.weight", Shape{C});
    Value* ln1_b = param(p + "ln_1.bias", Shape{C});
    Value* attn_w = param(p + "attn.c_attn.weight", Shape{C, 3 * C});
    Value* attn_b = param(p + "attn.c_attn.bias", Shape{3 * C});
    Value* proj_w = param(p + "attn.c_proj.weight", Shape{C, C});
    Value* proj_b = param(p + "attn.c_proj.bias", Shape{C});
    Value* ln2_w = param(p + "ln_2.weight", Shape{C});
    Value* ln2_b = param(p + "ln_2.bias", Shape{C});
    Value* fc_w = param(p + "mlp.c_fc.weight", Shape{C, 4 * C});
    Value* fc_b = param(p + "mlp.c_fc.bias", Shape{4 * C});
    Value* fc2_w = param(p + "mlp.c_proj.weight", Shape{4 * C, C});
    Value* fc2_b = param(p + "mlp.c_proj.bias", Shape{C});

    Value* h = LayerNorm(b, x, ln1_w, ln1_b, c.layer_norm_epsilon, "ln_1").y;
    Value* qkv = Matmul(b, h, attn_w, false, false, attn_b, "qkv");
    auto parts = Split(b, qkv, -1, {C, C, C}, "qkv_split");
    Value* q = Reshape(b, parts[0], Shape{B, T, H, D}, "q");
    Value* k = Reshape(b, parts[1], Shape{B, T, H, D}, "k");
    Value* v = Reshape(b, parts[2], Shape{B, T, H, D}, "v");
    Value* a = Reshape(b, CausalSelfAttention(b, q, k, v, "attn"), Shape{B, T, C}, "attn_out");
    x = Add(b, x, Matmul(b, a, proj_w, false, false, proj_b, "attn_proj"), "res_attn");
    h = LayerNorm(b, x, ln2_w, ln2_b, c.layer_norm_epsilon, "ln_2").y;
    Value* f = Gelu(b, Matmul(b, h, fc_w, false, false, fc_b, "fc"), "gelu");
    x = Add(b, x, Matmul(b, f, fc2_w, false, false, fc2_b, "mlp_proj"), "res_mlp");
  }
  Value* lnf_w = param("transformer.ln_f.weight", Shape{C});
  Value* lnf_b = param("transformer.ln_f.bias", Shape{C});
  {
    ir::Builder::Scope s(b, "head");
    Value* h = LayerNorm(b, x, lnf_w, lnf_b, c.layer_norm_epsilon, "ln_f").y;
    // Tied: logits = h @ wte^T, over the padded vocabulary (wte's zero-padded copy; the embedding
    // above reads wte itself).
    Value* head = PadHead(b, wte, o.vocab_multiple, B * T, m);
    m.logits = Matmul(b, h, head, false, true, nullptr, "logits");
    m.loss = CrossEntropy(b, m.logits, m.targets, -100, "loss", V);
  }
  return m;
}

}  // namespace zt::models
