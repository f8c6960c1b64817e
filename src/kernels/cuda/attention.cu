// CUDA kernels of the attention family (semantics in ir/ops/attention.cc, reference in
// kernels/cpu/attention.cc): `attention` and `attention_bwd` for DeviceKind::kCUDA. Each node runs
// on one of two paths (attention_cuda.cuh): cuDNN's fused flash attention (bf16/f16, D % 8 == 0,
// D <= 128, no mask or causal with S == T, no gradient into lse) or our own tiled kernels (every
// other case, and every case when ZT_ATTENTION=fallback). ZT_ATTENTION: "auto" (default) takes
// cuDNN where it runs and ours elsewhere; "cudnn" does the same but warns once per case that falls
// back, with cuDNN's reason; "fallback" never calls cuDNN.
// Invariants: both paths write every element of every output; neither allocates (cuDNN's scratch
// comes from the op's workspace, and a plan that needs more than the op's workspace rule gives is
// not used) nor synchronizes the host.
#include <atomic>
#include <cmath>
#include <mutex>
#include <set>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "core/logging.h"
#include "core/settings.h"
#include "kernels/cuda/attention_cuda.cuh"
#include "kernels/cuda/registry.h"
#include "kernels/kernel.h"

namespace zt {
namespace attn {
namespace {

std::atomic<int64_t> g_cudnn_fwd{0}, g_cudnn_bwd{0}, g_fallback_fwd{0}, g_fallback_bwd{0};

enum class Mode { kAuto, kCudnn, kFallback };

StatusOr<Mode> ReadMode() {
  const std::string v = settings::GetString("ZT_ATTENTION");
  if (v == "auto" || v.empty()) return Mode::kAuto;
  if (v == "cudnn") return Mode::kCudnn;
  if (v == "fallback") return Mode::kFallback;
  return InvalidArgument("ZT_ATTENTION='" + v + "' is not an attention path; use auto, cudnn or fallback");
}

StatusOr<AttnDims> Dims(const Tensor& q, const Tensor& k, const Tensor& v, const ir::AttrMap& attrs) {
  ZT_CHECK(q.shape.rank() == 4 && k.shape.rank() == 4 && k.shape == v.shape);
  ZT_CHECK(q.dtype == k.dtype && q.dtype == v.dtype);
  AttnDims d;
  d.B = q.shape[0];
  d.T = q.shape[1];
  d.H = q.shape[2];
  d.D = q.shape[3];
  d.S = k.shape[1];
  d.Hkv = k.shape[2];
  d.causal = attrs.GetBool("causal");
  ZT_CHECK(k.shape[0] == d.B && k.shape[3] == d.D && d.Hkv > 0 && d.H % d.Hkv == 0 && d.S > 0);
  ZT_CHECK(!d.causal || d.S >= d.T) << "attention: causal needs S >= T";
  if (d.D > kMaxHeadDim)
    return Unimplemented("attention on CUDA runs head dims up to " + std::to_string(kMaxHeadDim) + "; this node has " +
                         q.shape.ToString() + " (D = " + std::to_string(d.D) + ")");
  const double scale = attrs.GetFloat("scale");
  d.scale = static_cast<float>(scale == 0.0 ? 1.0 / std::sqrt(static_cast<double>(d.D)) : scale);
  return d;
}

// In "cudnn" mode, says once per case why cuDNN did not run it.
void WarnFallback(const AttnDims& d, DType dtype, bool backward, const std::string& why) {
  static std::mutex mu;
  static std::set<std::string> seen;
  const std::string key = std::string(backward ? "attention_bwd" : "attention") + " " + DTypeName(dtype) +
                          " B=" + std::to_string(d.B) + " T=" + std::to_string(d.T) + " H=" + std::to_string(d.H) +
                          " S=" + std::to_string(d.S) + " Hkv=" + std::to_string(d.Hkv) +
                          " D=" + std::to_string(d.D) + (d.causal ? " causal" : "");
  std::lock_guard<std::mutex> lock(mu);
  if (seen.insert(key).second)
    ZT_LOG(WARNING) << "ZT_ATTENTION=cudnn: " << key << " runs on the fallback kernels: " << why;
}

Status AttentionKernel(const KernelContext& c) {
  ZT_ASSIGN_OR_RETURN(Mode mode, ReadMode());
  const Tensor &q = c.inputs[0], &k = c.inputs[1], &v = c.inputs[2];
  const Tensor &out = c.outputs[0], &lse = c.outputs[1];
  ZT_ASSIGN_OR_RETURN(AttnDims d, Dims(q, k, v, c.attrs));
  ZT_CHECK(out.dtype == q.dtype && out.shape == q.shape);
  ZT_CHECK(lse.dtype == DType::kF32 && lse.shape == Shape({d.B, d.H, d.T}));
  if (d.B * d.H * d.T == 0) return OkStatus();
  cudaStream_t s = CudaStreamOf(c.stream);
  if (mode != Mode::kFallback) {
    std::string why = "outside cuDNN's scope (bf16/f16, D % 8 == 0, D <= 128, causal only with S == T)";
    if (CudnnSupports(d, q.dtype)) {
      if (CudnnForward(d, q.dtype, {q.data, k.data, v.data, out.data, static_cast<float*>(lse.data)},
                       c.workspace.data, c.workspace.nbytes(), s, &why)) {
        g_cudnn_fwd.fetch_add(1, std::memory_order_relaxed);
        return OkStatus();
      }
    }
    if (mode == Mode::kCudnn) WarnFallback(d, q.dtype, false, why);
  }
  FallbackForward(d, q.dtype, q.data, k.data, v.data, out.data, static_cast<float*>(lse.data), s);
  g_fallback_fwd.fetch_add(1, std::memory_order_relaxed);
  return OkStatus();
}

Status AttentionBwdKernel(const KernelContext& c) {
  ZT_ASSIGN_OR_RETURN(Mode mode, ReadMode());
  const Tensor &dout = c.inputs[0], &q = c.inputs[1], &k = c.inputs[2], &v = c.inputs[3], &out = c.inputs[4],
               &lse = c.inputs[5];
  const float* dlse = c.inputs.size() == 7 ? static_cast<const float*>(c.inputs[6].data) : nullptr;
  const Tensor &dq = c.outputs[0], &dk = c.outputs[1], &dv = c.outputs[2];
  ZT_ASSIGN_OR_RETURN(AttnDims d, Dims(q, k, v, c.attrs));
  ZT_CHECK(dout.dtype == q.dtype && dout.shape == q.shape && out.dtype == q.dtype && out.shape == q.shape);
  ZT_CHECK(lse.dtype == DType::kF32 && lse.shape == Shape({d.B, d.H, d.T}));
  ZT_CHECK(dq.dtype == q.dtype && dq.shape == q.shape && dk.dtype == k.dtype && dk.shape == k.shape &&
           dv.dtype == v.dtype && dv.shape == v.shape);
  if (d.B * d.Hkv * d.S == 0) return OkStatus();
  cudaStream_t s = CudaStreamOf(c.stream);
  if (mode != Mode::kFallback) {
    std::string why = "outside cuDNN's scope (bf16/f16, D % 8 == 0, D <= 128, causal only with S == T)";
    if (dlse != nullptr) {
      why = "cuDNN's backward takes no gradient into lse";
    } else if (CudnnSupports(d, q.dtype) && d.T > 0) {
      if (CudnnBackward(d, q.dtype,
                        {dout.data, q.data, k.data, v.data, out.data, static_cast<const float*>(lse.data), dq.data,
                         dk.data, dv.data},
                        c.workspace.data, c.workspace.nbytes(), s, &why)) {
        g_cudnn_bwd.fetch_add(1, std::memory_order_relaxed);
        return OkStatus();
      }
    }
    if (mode == Mode::kCudnn) WarnFallback(d, q.dtype, true, why);
  }
  FallbackBackward(d, q.dtype, dout.data, q.data, k.data, v.data, out.data, static_cast<const float*>(lse.data), dlse,
                   dq.data, dk.data, dv.data, s);
  g_fallback_bwd.fetch_add(1, std::memory_order_relaxed);
  return OkStatus();
}

}  // namespace

PathCounts GetPathCounts() {
  PathCounts p;
  p.cudnn_fwd = g_cudnn_fwd.load();
  p.cudnn_bwd = g_cudnn_bwd.load();
  p.fallback_fwd = g_fallback_fwd.load();
  p.fallback_bwd = g_fallback_bwd.load();
  return p;
}

}  // namespace attn

void RegisterAttentionCudaKernels(KernelRegistry& r) {
  r.Register("attention", DeviceKind::kCUDA, attn::AttentionKernel);
  r.Register("attention_bwd", DeviceKind::kCUDA, attn::AttentionBwdKernel);
}

}  // namespace zt
