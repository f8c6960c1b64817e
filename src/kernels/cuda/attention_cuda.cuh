// Internal interface of the CUDA attention family (kernels/cuda/attention*.{cu,cc}): the two paths
// that run an attention node, and the test hook that says which one ran.
//   Fallback (attention_fallback.cu): our own FlashAttention-2-style tiled kernels, any T, S,
//     D <= 128, causal or not, grouped-query, f32/bf16/f16 storage with f32 math; deterministic.
//   cuDNN (attention_cudnn.cc): cuDNN 9's fused flash attention, reached through the backend graph
//     API (no cudnn-frontend), bf16/f16 only; returns false when it cannot run a case, and the
//     caller then takes the fallback.
// Layouts (the op's, see ir/ops/attention.cc): q/out/dout/dq (B, T, H, D), k/v/dk/dv (B, S, Hkv, D)
// dense row-major, lse/dlse f32 (B, H, T). No header here includes cuDNN: host code only.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace zt::attn {

struct AttnDims {
  int64_t B = 0, T = 0, H = 0, S = 0, Hkv = 0, D = 0;
  bool causal = false;
  float scale = 0;  // resolved: never 0 here
};

// Largest head dim the CUDA kernels (ours and cuDNN's) run.
inline constexpr int64_t kMaxHeadDim = 128;

// ---- fallback: our kernels ------------------------------------------------------------------
// out, lse written in full. Launches on `stream`; no host synchronization, no allocation.
void FallbackForward(const AttnDims& d, DType dtype, const void* q, const void* k, const void* v, void* out,
                     float* lse, cudaStream_t stream);
// dlse may be null. dq, dk, dv written in full; every sum runs in a fixed order (no atomics).
void FallbackBackward(const AttnDims& d, DType dtype, const void* dout, const void* q, const void* k,
                      const void* v, const void* out, const float* lse, const float* dlse, void* dq, void* dk,
                      void* dv, cudaStream_t stream);

// ---- cuDNN ----------------------------------------------------------------------------------
// Whether the cuDNN path can take this case at all (dtype, head dim, mask shape), before any plan.
bool CudnnSupports(const AttnDims& d, DType dtype);

struct CudnnFwdArgs {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  float* lse;
};
struct CudnnBwdArgs {
  const void* dout;
  const void* q;
  const void* k;
  const void* v;
  const void* out;
  const float* lse;
  void* dq;
  void* dk;
  void* dv;
};

// Runs the case through cuDNN on `stream` with `workspace` (device, `workspace_bytes`) and returns
// true, or returns false without touching the outputs when cuDNN cannot (no plan builds for the
// shape, the plan needs more workspace than given, a pointer is not 16-byte aligned); `why` then
// says why. Plans are built once per (device, shape, dtype, mask) and cached.
// The path uses its own cuDNN handle per device (see attention_cudnn.cc), on the current device.
bool CudnnForward(const AttnDims& d, DType dtype, const CudnnFwdArgs& a, void* workspace, size_t workspace_bytes,
                  cudaStream_t stream, std::string* why);
bool CudnnBackward(const AttnDims& d, DType dtype, const CudnnBwdArgs& a, void* workspace, size_t workspace_bytes,
                   cudaStream_t stream, std::string* why);
// Workspace bytes the cached (or newly built) plan needs, or -1 when no plan builds (for reports).
int64_t CudnnWorkspaceBytes(const AttnDims& d, DType dtype, bool backward, std::string* why);

// ---- test hook --------------------------------------------------------------------------------
// How many attention / attention_bwd nodes each path ran since the process started.
struct PathCounts {
  int64_t cudnn_fwd = 0, cudnn_bwd = 0, fallback_fwd = 0, fallback_bwd = 0;
};
PathCounts GetPathCounts();

}  // namespace zt::attn
