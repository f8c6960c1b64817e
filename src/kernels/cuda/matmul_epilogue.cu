// CUDA kernels: matmul_gelu, matmul_dgelu, matmul_bgrad (semantics in ir/ops/matmul_epilogue.cc,
// reference in kernels/cpu/matmul_epilogue.cc). Each is one cuBLASLt call with an epilogue
// (cuda_lt::RunMatmulLt, kernels/cuda/matmul.cu, which maps the row-major op to cuBLASLt's
// column-major problem and caches the algorithm per problem and epilogue):
//   matmul_gelu:  GELU_AUX / GELU_AUX_BIAS, D = out, aux = pre;
//   matmul_dgelu: DGELU, D = dpre, aux = pre (read);
//   matmul_bgrad: BGRADA when the bias gradient sums our b (cuBLASLt's A), BGRADB when it sums
//                 our a; the vector goes to BIAS_POINTER.
// cuBLASLt computes gelu (tanh form) and gelu' from its f32 accumulator, and the bias gradient by
// its own f32 summation, where the CPU reference rounds the product to the dtype first and sums in
// double: results agree within the dtype's tolerance, not bit for bit.
// When cuBLASLt cannot run the epilogue (see RunMatmulLt: batched, misaligned large problems, aux
// rows not a multiple of 8, no algorithm, forced), the op runs unfused: the registered matmul
// kernel (cuBLASLt or its tiled fallback) writes the product into an output, then the registered
// gelu / gelu_bwd (in place: elementwise) / reduce_sum_to kernel finishes it, exactly the unfused
// nodes' kernels (counted: matmul_epilogue.cuh).
// Invariant: every output element is written on either path; the host never synchronizes.
#include <atomic>
#include <vector>

#include "kernels/cuda/matmul_epilogue.cuh"
#include "kernels/cuda/matmul_lt.h"
#include "kernels/cuda/registry.h"
#include "kernels/kernel.h"

namespace zt {
namespace {

std::atomic<int64_t> g_unfused{0};
std::atomic<bool> g_force_unfused{false};

// Runs the CUDA kernel registered for `op` on c's stream, attributes and workspace, with other
// inputs and outputs (the unfused path).
Status RunUnfused(const KernelContext& c, const char* op, std::vector<Tensor> in, std::vector<Tensor> out) {
  KernelFn fn = KernelRegistry::Global().Find(op, DeviceKind::kCUDA);
  ZT_CHECK(fn != nullptr) << "no CUDA kernel for " << op;
  KernelContext sub{c.attrs, in, out, c.workspace, c.backend, c.stream, c.comm};
  return fn(sub);
}

// The fused call on the node's a and b with its transposes.
cuda_lt::MatmulCall Call(const KernelContext& c, const Tensor& out, cuda_lt::Epilogue epilogue) {
  cuda_lt::MatmulCall call;
  call.a = &c.inputs[0];
  call.b = &c.inputs[1];
  call.out = &out;
  call.trans_a = c.attrs.GetBool("trans_a");
  call.trans_b = c.attrs.GetBool("trans_b");
  call.epilogue = epilogue;
  return call;
}

// Runs `call` fused; false when it must run unfused (counted).
StatusOr<bool> RunFused(const KernelContext& c, const cuda_lt::MatmulCall& call) {
  if (!g_force_unfused.load() && call.out->numel() > 0) {
    ZT_ASSIGN_OR_RETURN(bool done, cuda_lt::RunMatmulLt(c, call));
    if (done) return true;
  }
  g_unfused.fetch_add(1);
  return false;
}

Status MatmulGeluKernel(const KernelContext& c) {
  const Tensor& out = c.outputs[0];  // gelu(pre)
  const Tensor& pre = c.outputs[1];
  ZT_CHECK(out.dtype == pre.dtype && out.shape == pre.shape);
  if (out.numel() == 0) return OkStatus();
  cuda_lt::MatmulCall call = Call(c, out, cuda_lt::Epilogue::kGeluAux);
  call.bias = c.inputs.size() == 3 ? c.inputs[2].data : nullptr;
  call.aux = pre.data;
  ZT_ASSIGN_OR_RETURN(bool fused, RunFused(c, call));
  if (fused) return OkStatus();
  std::vector<Tensor> mm_in(c.inputs.begin(), c.inputs.end());  // a, b[, bias]
  ZT_RETURN_IF_ERROR(RunUnfused(c, "matmul", mm_in, {pre}));
  return RunUnfused(c, "gelu", {pre}, {out});
}

Status MatmulDGeluKernel(const KernelContext& c) {
  const Tensor& dpre = c.outputs[0];
  const Tensor& pre = c.inputs[2];
  ZT_CHECK(dpre.dtype == pre.dtype && dpre.shape == pre.shape);
  if (dpre.numel() == 0) return OkStatus();
  cuda_lt::MatmulCall call = Call(c, dpre, cuda_lt::Epilogue::kDGelu);
  call.aux = pre.data;
  ZT_ASSIGN_OR_RETURN(bool fused, RunFused(c, call));
  if (fused) return OkStatus();
  // The product into dpre, then dpre = gelu_bwd(dpre, pre) in place.
  ZT_RETURN_IF_ERROR(RunUnfused(c, "matmul", {c.inputs[0], c.inputs[1]}, {dpre}));
  return RunUnfused(c, "gelu_bwd", {dpre, pre}, {dpre});
}

Status MatmulBGradKernel(const KernelContext& c) {
  const Tensor& out = c.outputs[0];
  const Tensor& bias_grad = c.outputs[1];
  const bool of_a = c.attrs.GetString("bias_of") == "a";
  const Tensor& summed = c.inputs[of_a ? 0 : 1];
  ZT_CHECK(bias_grad.dtype == out.dtype && summed.shape.EndsWith(bias_grad.shape));
  cuda_lt::MatmulCall call = Call(c, out, of_a ? cuda_lt::Epilogue::kBiasGradA : cuda_lt::Epilogue::kBiasGradB);
  call.bias_grad = bias_grad.data;
  ZT_ASSIGN_OR_RETURN(bool fused, RunFused(c, call));
  if (fused) return OkStatus();
  // An empty out with a non-empty bias gradient (M or N = 0) lands here too: the matmul kernel
  // writes nothing, reduce_sum_to sums the operand.
  ZT_RETURN_IF_ERROR(RunUnfused(c, "matmul", {c.inputs[0], c.inputs[1]}, {out}));
  return RunUnfused(c, "reduce_sum_to", {summed}, {bias_grad});
}

}  // namespace

int64_t MatmulEpilogueCudaFallbackCount() { return g_unfused.load(); }
void SetMatmulEpilogueCudaForceFallback(bool force) { g_force_unfused.store(force); }

void RegisterMatmulEpilogueCudaKernels(KernelRegistry& r) {
  r.Register("matmul_gelu", DeviceKind::kCUDA, MatmulGeluKernel);
  r.Register("matmul_dgelu", DeviceKind::kCUDA, MatmulDGeluKernel);
  r.Register("matmul_bgrad", DeviceKind::kCUDA, MatmulBGradKernel);
}

}  // namespace zt
