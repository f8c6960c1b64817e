// Matmul epilogue op family: a matmul fused with the elementwise step or the reduction that follows
// it in a training step, so that the result makes one pass over memory instead of two (cuBLASLt
// epilogues on CUDA). Emitted by passes/fuse_matmul_epilogue.h after autodiff, never by models:
//   matmul_gelu(a, b[, bias]){trans_a, trans_b} -> (out, pre)      pre = matmul, out = gelu(pre)
//   matmul_dgelu(a, b, pre){trans_a, trans_b} -> dpre              gelu_bwd(matmul(a, b), pre)
//   matmul_bgrad(a, b){trans_a, trans_b, bias_of} -> (out, bias_grad)
//                                                  out = a^T b, bias_grad = column sums of a or b
// Semantics, shape rules and costs in ir/ops/matmul_epilogue.cc.
#pragma once

namespace zt::ir {
class OpRegistry;
void RegisterMatmulEpilogueOps(OpRegistry& r);
}  // namespace zt::ir
