// RMSNorm op family over the last dim: rmsnorm(x, w){eps} -> (y, rstd) with rstd f32 [...] saved
// for rmsnorm_bwd(dy, x, w, rstd[, dresidual]) -> (dx, dw). y = x * rstd * w,
// rstd = 1/sqrt(mean(x^2) + eps); and the fused residual add add_rmsnorm(a, b, w){eps} -> (sum, y, rstd).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterRmsNormOps(OpRegistry& r);

// rmsnorm_bwd sums dw over the rows of x through a fixed partition of the rows into chunks that
// depends on the row count only (never on the thread count): one f64 partial sum per chunk lives
// in the workspace, combined in chunk order. Chunk count and workspace bytes of the op's rule.
int64_t RmsNormBwdChunks(int64_t rows);
size_t RmsNormBwdWorkspaceBytes(int64_t rows, int64_t c);

namespace ops {
struct RmsNormResult {
  Value* y;
  Value* rstd;
};
RmsNormResult RmsNorm(Builder& b, Value* x, Value* w, double eps, const std::string& name = "");
struct AddRmsNormResult {
  Value* sum;  // a + addend, as `add` gives it
  Value* y;
  Value* rstd;
};
AddRmsNormResult AddRmsNorm(Builder& b, Value* a, Value* addend, Value* w, double eps, const std::string& name = "");
}  // namespace ops
}  // namespace zt::ir
