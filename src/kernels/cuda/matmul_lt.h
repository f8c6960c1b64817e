// matmul_lt.h: the cuBLASLt path of the CUDA matmul kernels, shared by kernels/cuda/matmul.cu (which
// owns it: descriptors, heuristic, algorithm cache, padded copies) and kernels/cuda/matmul_epilogue.cu
// (the fused GELU, GELU-gradient and bias-gradient epilogues). Plain C++: includable from .cc.
// The call is described in the row-major terms of the ops (ir/ops/matmul.cc,
// ir/ops/matmul_epilogue.cc); matmul.cu maps it to cuBLASLt's column-major problem.
// Invariant: RunMatmulLt either runs the whole call (every output written, on the kernel's stream,
// no host synchronization) and returns true, or writes no output and returns false, so that the
// caller can run its fallback.
#pragma once

#include "core/status.h"
#include "core/tensor.h"
#include "kernels/kernel.h"

namespace zt::cuda_lt {

// What cuBLASLt does with the product P = op(a) op(b) [+ bias] before storing it.
enum class Epilogue {
  kNone,       // out = P
  kGeluAux,    // aux = P (rounded to the dtype), out = gelu(P) (tanh form, from the f32 P)
  kDGelu,      // out = P * gelu'(aux); no bias
  kBiasGradA,  // out = P = a^T b (trans_a, !trans_b, rank 2); bias_grad[j] = sum_k a[k][j]
  kBiasGradB,  // the same with bias_grad[j] = sum_k b[k][j]
};

struct MatmulCall {
  const Tensor* a = nullptr;
  const Tensor* b = nullptr;
  const void* bias = nullptr;  // [N] of out's dtype, or nullptr
  const Tensor* out = nullptr;
  bool trans_a = false, trans_b = false;
  Epilogue epilogue = Epilogue::kNone;
  void* aux = nullptr;        // kGeluAux (written) and kDGelu (read): out's shape, dtype and layout
  void* bias_grad = nullptr;  // kBiasGrad*: [summed operand's last dim] of out's dtype (written)
};

// Runs `call` through cuBLASLt on c's stream with c's workspace (the op's workspace rule). Returns
// false when it cannot: SetMatmulCudaForceFallback, k == 0, an empty output, no cuBLASLt algorithm
// or a call cuBLASLt refuses; and, with an epilogue, problems the epilogue path does not take:
// batched (after merging a shared b), large with misaligned rows (the plain matmul pads those),
// aux rows not a multiple of 8 elements (EPILOGUE_AUX_LD), aux or bias_grad not 16-byte aligned.
// An error only for a cuBLASLt failure other than a refusal.
StatusOr<bool> RunMatmulLt(const KernelContext& c, const MatmulCall& call);

}  // namespace zt::cuda_lt
