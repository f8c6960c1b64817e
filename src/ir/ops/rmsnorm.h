// RMSNorm op family over the last dim: rmsnorm(x, w){eps} -> (y, rstd) with rstd f32 [...] saved
// for rmsnorm_bwd(dy, x, w, rstd) -> (dx, dw). y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps).
#pragma once

#include <string>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterRmsNormOps(OpRegistry& r);

namespace ops {
struct RmsNormResult {
  Value* y;
  Value* rstd;
};
RmsNormResult RmsNorm(Builder& b, Value* x, Value* w, double eps, const std::string& name = "");
}  // namespace ops
}  // namespace zt::ir
