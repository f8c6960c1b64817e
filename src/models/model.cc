// Shared model-builder helpers: config checks and the padded LM head.
// Invariant: a padded head changes no parameter; its padding rows are a zero constant.
#include "models/model.h"

#include <string>

#include "core/check.h"
#include "ir/ops/constant.h"
#include "ir/ops/views.h"

namespace zt::models {

Status RequirePositive(int64_t v, const char* family, const char* key) {
  if (v > 0) return OkStatus();
  return InvalidArgument(std::string(family) + " config: " + key + " must be > 0, is " + std::to_string(v));
}

Status ValidateBuildOptions(const BuildOptions& o, const char* family) {
  if (o.vocab_multiple > 0) return OkStatus();
  return InvalidArgument(std::string(family) + " build option vocab_multiple must be > 0 (1: no padding), is " +
                         std::to_string(o.vocab_multiple));
}

int64_t PaddedVocab(int64_t vocab, int64_t multiple) {
  ZT_CHECK(vocab > 0 && multiple > 0) << "vocab " << vocab << ", multiple " << multiple;
  return (vocab + multiple - 1) / multiple * multiple;
}

ir::Value* PadHead(ir::Builder& b, ir::Value* head, int64_t multiple, int64_t tokens, BuiltModel& m) {
  ZT_CHECK_EQ(head->shape.rank(), 2);
  const int64_t v = head->shape[0], c = head->shape[1];
  const int64_t vp = PaddedVocab(v, multiple);
  m.vocab = v;
  m.padded_vocab = vp;
  if (vp == v) return head;
  // Each of the three head GEMMs (logits; dlogits @ W and dlogits^T @ h) costs 2 * tokens * Vp * C.
  const double pad = 2.0 * static_cast<double>(tokens) * static_cast<double>(vp - v) * static_cast<double>(c);
  m.padding_flops_forward = pad;
  m.padding_flops_backward = 2 * pad;
  ir::Value* zeros = ir::ops::Fill(b, head->dtype, Shape{vp - v, c}, 0.0, "vocab_padding");
  return ir::ops::Concat(b, {head, zeros}, 0, "padded_head");
}

}  // namespace zt::models
