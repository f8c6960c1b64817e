// LayerNorm op family over the last dim: layernorm(x, w, b){eps} -> (y, mean, rstd) with mean and
// rstd f32 [...] saved for layernorm_bwd(dy, x, w, mean, rstd) -> (dx, dw, db).
#pragma once

#include <string>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterLayerNormOps(OpRegistry& r);

namespace ops {
struct LayerNormResult {
  Value* y;
  Value* mean;
  Value* rstd;
};
LayerNormResult LayerNorm(Builder& b, Value* x, Value* w, Value* bias, double eps,
                          const std::string& name = "");
}  // namespace ops
}  // namespace zt::ir
