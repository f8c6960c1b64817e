// LayerNorm op family over the last dim: layernorm(x, w, b){eps} -> (y, mean, rstd) with mean and
// rstd f32 [...] saved for layernorm_bwd(dy, x, w, mean, rstd[, dresidual]) -> (dx, dw, db); and
// the fused residual add add_layernorm(a, b, w, bias){eps} -> (sum, y, mean, rstd).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "ir/builder.h"

namespace zt::ir {
class OpRegistry;
void RegisterLayerNormOps(OpRegistry& r);

// layernorm_bwd sums dw and db over the rows of x through a fixed partition of the rows into
// chunks that depends on the row count only (never on the thread count): one f64 partial sum per
// chunk lives in the workspace, and the partials are combined in chunk order. These give the chunk
// count and the workspace bytes the op's workspace rule asks for (the CPU kernel uses the same).
int64_t LayerNormBwdChunks(int64_t rows);
size_t LayerNormBwdWorkspaceBytes(int64_t rows, int64_t c);

namespace ops {
struct LayerNormResult {
  Value* y;
  Value* mean;
  Value* rstd;
};
LayerNormResult LayerNorm(Builder& b, Value* x, Value* w, Value* bias, double eps,
                          const std::string& name = "");
struct AddLayerNormResult {
  Value* sum;  // a + addend, as `add` gives it
  Value* y;
  Value* mean;
  Value* rstd;
};
AddLayerNormResult AddLayerNorm(Builder& b, Value* a, Value* addend, Value* w, Value* bias, double eps,
                                const std::string& name = "");
}  // namespace ops
}  // namespace zt::ir
