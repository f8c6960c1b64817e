// CPU rope: first a cos/sin table per (t, i) computed exactly as HF LlamaRotaryEmbedding does in
// f32 (inv_freq = 1 / theta^(2i/D), freq = t * inv_freq, cos/sin of the f32 freq), then each
// (b, t, h) row rotated in f32. Invariant: every output element depends only on its own inputs
// (no reduction), so results never depend on the thread count.
#include "kernels/cpu/rope.h"

#include <cmath>

#include "backend/cpu/parallel.h"
#include "core/mem_category.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/kernel.h"

namespace zt {

void rope_fwd(const Tensor& x, double theta, bool inverse, const Tensor& out, const Tensor& workspace) {
  ZT_CHECK(x.dtype == out.dtype && x.shape == out.shape && x.shape.rank() == 4);
  const int64_t B = x.shape[0], T = x.shape[1], H = x.shape[2], D = x.shape[3];
  ZT_CHECK(D % 2 == 0) << "rope: odd head dim " << D;
  const int64_t half = D / 2;
  const size_t table_bytes = AlignedBytes(static_cast<size_t>(T * half) * 4);
  ZT_CHECK(workspace.nbytes() >= 2 * table_bytes) << "rope: workspace too small";
  if (x.numel() == 0) return;
  float* cos_t = static_cast<float*>(workspace.data);                                    // (T, D/2)
  float* sin_t = reinterpret_cast<float*>(static_cast<char*>(workspace.data) + table_bytes);  // (T, D/2)

  // HF: inv_freq = 1.0 / (base ** (arange(0, D, 2).float() / D)), all f32; freqs = t * inv_freq.
  const float base = static_cast<float>(theta);
  const float sign = inverse ? -1.0f : 1.0f;
  ParallelFor(T, 16, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t i = 0; i < half; ++i) {
        float expo = static_cast<float>(2 * i) / static_cast<float>(D);
        float inv_freq = 1.0f / std::pow(base, expo);
        float freq = static_cast<float>(t) * inv_freq;
        cos_t[t * half + i] = std::cos(freq);
        sin_t[t * half + i] = sign * std::sin(freq);
      }
  });

  DispatchFloat(x.dtype, [&](auto tag) {
    using T_ = decltype(tag);
    const T_* src = static_cast<const T_*>(x.data);
    T_* dst = static_cast<T_*>(out.data);
    const int64_t rows = B * T * H;
    ParallelFor(rows, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t t = (r / H) % T;
        const float* c = cos_t + t * half;
        const float* s = sin_t + t * half;
        const T_* xr = src + r * D;
        T_* yr = dst + r * D;
        for (int64_t i = 0; i < half; ++i) {
          // Both inputs are read before either output is written, so out may alias x.
          float x1 = ToF32(xr[i]), x2 = ToF32(xr[i + half]);
          float y1 = x1 * c[i] - x2 * s[i];
          float y2 = x2 * c[i] + x1 * s[i];
          yr[i] = FromF32<T_>(y1);
          yr[i + half] = FromF32<T_>(y2);
        }
      }
    });
  });
}

namespace {
Status RopeKernel(const KernelContext& c) {
  rope_fwd(c.inputs[0], c.attrs.GetFloat("theta"), c.attrs.GetBool("inverse"), c.outputs[0], c.workspace);
  return OkStatus();
}
}  // namespace

void RegisterRopeCpuKernels(KernelRegistry& r) { r.Register("rope", DeviceKind::kCPU, RopeKernel); }

}  // namespace zt
