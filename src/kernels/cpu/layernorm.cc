// CPU kernels: layernorm, add_layernorm, layernorm_bwd (with or without dresidual). Rows are
// independent; dw/db are summed per fixed row chunk (ir::LayerNormBwdChunks) into f64 partials in
// the workspace, then combined in chunk order, so every output is bit-identical whatever the
// thread count. add_layernorm writes a row of the sum (rounded as `add` rounds it) and normalizes
// that stored row with the same code as layernorm; the dresidual add rounds dx first, as the
// separate `add` node would: both fused forms are bit-identical to their two-node compositions.
#include "kernels/cpu/layernorm.h"

#include <algorithm>
#include <cmath>

#include "backend/cpu/parallel.h"
#include "ir/ops/layernorm.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/norm_residual.h"
#include "kernels/kernel.h"

namespace zt {
namespace {

// Rows per parallel task: about 16K elements each.
int64_t RowGrain(int64_t c) { return std::max<int64_t>(1, 16384 / c); }

// Checks the shapes a layernorm node guarantees; returns C.
int64_t CheckRows(const Tensor& x, const Tensor& w, const Tensor& a, const Tensor& b) {
  ZT_CHECK(x.shape.rank() >= 1) << "layernorm: x must have rank >= 1";
  int64_t c = x.shape[-1];
  ZT_CHECK(c > 0) << "layernorm: empty last dim";
  int64_t rows = x.numel() / c;
  ZT_CHECK(w.dtype == x.dtype && w.shape == Shape{c}) << "layernorm: w " << w.shape << " vs x " << x.shape;
  ZT_CHECK(a.dtype == DType::kF32 && a.numel() == rows && b.dtype == DType::kF32 && b.numel() == rows)
      << "layernorm: statistics must be f32 with one value per row";
  return c;
}

Status LayerNormKernel(const KernelContext& k) {
  layernorm_fwd(k.inputs[0], k.inputs[1], k.inputs[2], k.attrs.GetFloat("eps"), k.outputs[0], k.outputs[1],
                k.outputs[2]);
  return OkStatus();
}

Status AddLayerNormKernel(const KernelContext& k) {
  add_layernorm_fwd(k.inputs[0], k.inputs[1], k.inputs[2], k.inputs[3], k.attrs.GetFloat("eps"), k.outputs[0],
                    k.outputs[1], k.outputs[2], k.outputs[3]);
  return OkStatus();
}

Status LayerNormBwdKernel(const KernelContext& k) {
  layernorm_bwd(k.inputs[0], k.inputs[1], k.inputs[2], k.inputs[3], k.inputs[4], k.outputs[0], k.outputs[1],
                k.outputs[2], k.workspace, k.inputs.size() == 6 ? &k.inputs[5] : nullptr);
  return OkStatus();
}

// layernorm of x, or with `addend` of sum = add(x, addend) (written to `sum_out`, then normalized).
void LayerNormRows(const Tensor& x, const Tensor* addend, const Tensor* sum_out, const Tensor& w, const Tensor& b,
                   double eps, const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  int64_t c = CheckRows(x, w, mean, rstd);
  ZT_CHECK(b.dtype == x.dtype && b.shape == Shape{c} && y.dtype == x.dtype && y.shape == x.shape);
  if (addend) CheckResidual(x, *addend, *sum_out);
  int64_t rows = x.numel() / c;
  float* pm = mean.as<float>();
  float* pr = rstd.as<float>();
  DispatchFloat(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.data);
    const T* padd = addend ? static_cast<const T*>(addend->data) : nullptr;
    T* psum = sum_out ? static_cast<T*>(sum_out->data) : nullptr;
    const T* pw = static_cast<const T*>(w.data);
    const T* pb = static_cast<const T*>(b.data);
    T* py = static_cast<T*>(y.data);
    ParallelFor(rows, RowGrain(c), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = padd ? AddRow(px + r * c, padd + r * c, psum + r * c, c) : px + r * c;
        T* yr = py + r * c;
        // Two passes in f64: the mean, then the biased variance around it.
        double sum = 0;
        for (int64_t j = 0; j < c; ++j) sum += ToF32(xr[j]);
        double mu = sum / static_cast<double>(c);
        double sq = 0;
        for (int64_t j = 0; j < c; ++j) {
          double d = ToF32(xr[j]) - mu;
          sq += d * d;
        }
        float m = static_cast<float>(mu);
        float rs = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(c) + eps));
        pm[r] = m;
        pr[r] = rs;
        // y from the saved (f32) statistics, exactly what layernorm_bwd differentiates.
        for (int64_t j = 0; j < c; ++j) yr[j] = FromF32<T>((ToF32(xr[j]) - m) * rs * ToF32(pw[j]) + ToF32(pb[j]));
      }
    });
  });
}

}  // namespace

void layernorm_fwd(const Tensor& x, const Tensor& w, const Tensor& b, double eps, const Tensor& y,
                   const Tensor& mean, const Tensor& rstd) {
  LayerNormRows(x, nullptr, nullptr, w, b, eps, y, mean, rstd);
}

void add_layernorm_fwd(const Tensor& a, const Tensor& b, const Tensor& w, const Tensor& bias, double eps,
                       const Tensor& sum, const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  LayerNormRows(a, &b, &sum, w, bias, eps, y, mean, rstd);
}

void layernorm_bwd(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                   const Tensor& dx, const Tensor& dw, const Tensor& db, const Tensor& workspace,
                   const Tensor* dresidual) {
  int64_t c = CheckRows(x, w, mean, rstd);
  ZT_CHECK(dy.dtype == x.dtype && dy.shape == x.shape && dx.dtype == x.dtype && dx.shape == x.shape);
  ZT_CHECK(dw.dtype == w.dtype && dw.shape == w.shape && db.dtype == w.dtype && db.shape == w.shape);
  if (dresidual) CheckResidual(dx, *dresidual, dx);
  int64_t rows = x.numel() / c;
  int64_t chunks = ir::LayerNormBwdChunks(rows);
  ZT_CHECK_GE(workspace.nbytes(), ir::LayerNormBwdWorkspaceBytes(rows, c)) << "layernorm_bwd: workspace too small";
  double* part_w = static_cast<double*>(workspace.data);  // (chunks, C)
  double* part_b = part_w + chunks * c;                   // (chunks, C)
  const float* pm = mean.as<float>();
  const float* pr = rstd.as<float>();
  const double inv_c = 1.0 / static_cast<double>(c);
  DispatchFloat(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = static_cast<const T*>(dy.data);
    const T* px = static_cast<const T*>(x.data);
    const T* pw = static_cast<const T*>(w.data);
    T* pdx = static_cast<T*>(dx.data);
    const T* pres = dresidual ? static_cast<const T*>(dresidual->data) : nullptr;
    ParallelFor(chunks, 1, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        double* aw = part_w + k * c;
        double* ab = part_b + k * c;
        std::fill(aw, aw + c, 0.0);
        std::fill(ab, ab + c, 0.0);
        for (int64_t r = rows * k / chunks; r < rows * (k + 1) / chunks; ++r) {
          const T* dyr = pdy + r * c;
          const T* xr = px + r * c;
          T* dxr = pdx + r * c;
          float m = pm[r], rs = pr[r];
          double sg = 0, sgx = 0;  // sum of g and of g * xhat over the row
          for (int64_t j = 0; j < c; ++j) {
            float xh = (ToF32(xr[j]) - m) * rs;
            float g = ToF32(dyr[j]) * ToF32(pw[j]);
            sg += g;
            sgx += static_cast<double>(g) * xh;
          }
          float mg = static_cast<float>(sg * inv_c), mgx = static_cast<float>(sgx * inv_c);
          for (int64_t j = 0; j < c; ++j) {
            float xh = (ToF32(xr[j]) - m) * rs;
            float d = ToF32(dyr[j]);
            float g = d * ToF32(pw[j]);
            dxr[j] = WithResidual(FromF32<T>(rs * (g - mg - xh * mgx)), pres, r * c + j);
            aw[j] += static_cast<double>(d) * xh;
            ab[j] += d;
          }
        }
      }
    });
    T* pdw = static_cast<T*>(dw.data);
    T* pdb = static_cast<T*>(db.data);
    ParallelFor(c, 256, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        double sw = 0, sb = 0;
        for (int64_t k = 0; k < chunks; ++k) {
          sw += part_w[k * c + j];
          sb += part_b[k * c + j];
        }
        pdw[j] = FromF32<T>(static_cast<float>(sw));
        pdb[j] = FromF32<T>(static_cast<float>(sb));
      }
    });
  });
}

void RegisterLayerNormCpuKernels(KernelRegistry& r) {
  r.Register("layernorm", DeviceKind::kCPU, LayerNormKernel);
  r.Register("add_layernorm", DeviceKind::kCPU, AddLayerNormKernel);
  r.Register("layernorm_bwd", DeviceKind::kCPU, LayerNormBwdKernel);
}

}  // namespace zt
