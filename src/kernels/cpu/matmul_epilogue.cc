// CPU kernels: matmul_gelu, matmul_dgelu, matmul_bgrad. Compositions of the matmul, activation and
// elementwise kernels (no arithmetic of their own):
//   matmul_gelu:  matmul_fwd -> pre, gelu_fwd(pre) -> out;
//   matmul_dgelu: matmul_fwd -> dpre (the product, rounded as the unfused matmul rounds it), then
//                 gelu_bwd(dpre, pre) -> dpre in place (elementwise: element i is read before it
//                 is written);
//   matmul_bgrad: matmul_fwd -> out, reduce_sum_to_fwd(the summed operand) -> bias_grad (the
//                 operand is the unfused reduce_sum_to's input seen as [K, len]: same memory, same
//                 order of additions).
// Invariant: bit-identical to running the unfused nodes (tests/ops/matmul_epilogue_test.cc).
#include "kernels/cpu/matmul_epilogue.h"

#include "kernels/cpu/activation.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/matmul.h"
#include "kernels/kernel.h"

namespace zt {
namespace {

// matmul_fwd of the node's first two inputs (and `bias`) into `out`, with the node's transposes.
void Matmul(const KernelContext& c, const Tensor& bias, const Tensor& out) {
  matmul_fwd(c.inputs[0], c.inputs[1], bias, c.attrs.GetBool("trans_a"), c.attrs.GetBool("trans_b"), out,
             c.workspace);
}

Status MatmulGeluKernel(const KernelContext& c) {
  const Tensor& out = c.outputs[0];
  const Tensor& pre = c.outputs[1];
  Matmul(c, c.inputs.size() == 3 ? c.inputs[2] : Tensor(), pre);
  gelu_fwd(pre, out);
  return OkStatus();
}

Status MatmulDGeluKernel(const KernelContext& c) {
  const Tensor& dpre = c.outputs[0];
  Matmul(c, Tensor(), dpre);
  gelu_bwd(dpre, c.inputs[2], dpre);
  return OkStatus();
}

Status MatmulBGradKernel(const KernelContext& c) {
  Matmul(c, Tensor(), c.outputs[0]);
  const Tensor& summed = c.inputs[c.attrs.GetString("bias_of") == "a" ? 0 : 1];
  reduce_sum_to_fwd(summed, c.outputs[1]);
  return OkStatus();
}

}  // namespace

void RegisterMatmulEpilogueCpuKernels(KernelRegistry& r) {
  r.Register("matmul_gelu", DeviceKind::kCPU, MatmulGeluKernel);
  r.Register("matmul_dgelu", DeviceKind::kCPU, MatmulDGeluKernel);
  r.Register("matmul_bgrad", DeviceKind::kCPU, MatmulBGradKernel);
}

}  // namespace zt
