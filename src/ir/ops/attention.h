// Attention op family: scaled dot-product self-attention with grouped-query heads.
//   attention(q [B,T,H,D], k [B,S,Hkv,D], v [B,S,Hkv,D]){causal, scale}
//     -> (out [B,T,H,D], lse f32 [B,H,T]); query head h uses kv head h / (H / Hkv).
//   scale 0 means 1/sqrt(D). attention_bwd(dout, q, k, v, out, lse){causal, scale} -> (dq, dk, dv).
#pragma once

#include <string>
#include <vector>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterAttentionOps(OpRegistry& r);

namespace ops {
Value* CausalSelfAttention(Builder& b, Value* q, Value* k, Value* v, const std::string& name = "");
// The general form: returns {out, lse}. scale 0 means 1/sqrt(D).
std::vector<Value*> Attention(Builder& b, Value* q, Value* k, Value* v, bool causal, double scale = 0.0,
                              const std::string& name = "");
}  // namespace ops
}  // namespace zt::ir
