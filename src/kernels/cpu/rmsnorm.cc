// CPU kernels: rmsnorm, add_rmsnorm, rmsnorm_bwd (with or without dresidual). Rows are
// independent; dw is summed per fixed row chunk (ir::RmsNormBwdChunks) into f64 partials in the
// workspace, then combined in chunk order, so every output is bit-identical whatever the thread
// count. add_rmsnorm writes a row of the sum (rounded as `add` rounds it) and normalizes that
// stored row with the same code as rmsnorm; the dresidual add rounds dx first, as the separate
// `add` node would: both fused forms are bit-identical to their two-node compositions.
#include "kernels/cpu/rmsnorm.h"

#include <algorithm>
#include <cmath>

#include "backend/cpu/parallel.h"
#include "ir/ops/rmsnorm.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/norm_residual.h"
#include "kernels/kernel.h"

namespace zt {
namespace {

// Rows per parallel task: about 16K elements each.
int64_t RowGrain(int64_t c) { return std::max<int64_t>(1, 16384 / c); }

// Checks the shapes an rmsnorm node guarantees; returns C.
int64_t CheckRows(const Tensor& x, const Tensor& w, const Tensor& rstd) {
  ZT_CHECK(x.shape.rank() >= 1) << "rmsnorm: x must have rank >= 1";
  int64_t c = x.shape[-1];
  ZT_CHECK(c > 0) << "rmsnorm: empty last dim";
  ZT_CHECK(w.dtype == x.dtype && w.shape == Shape{c}) << "rmsnorm: w " << w.shape << " vs x " << x.shape;
  ZT_CHECK(rstd.dtype == DType::kF32 && rstd.numel() == x.numel() / c) << "rmsnorm: rstd must be f32, one per row";
  return c;
}

Status RmsNormKernel(const KernelContext& k) {
  rmsnorm_fwd(k.inputs[0], k.inputs[1], k.attrs.GetFloat("eps"), k.outputs[0], k.outputs[1]);
  return OkStatus();
}

Status AddRmsNormKernel(const KernelContext& k) {
  add_rmsnorm_fwd(k.inputs[0], k.inputs[1], k.inputs[2], k.attrs.GetFloat("eps"), k.outputs[0], k.outputs[1],
                  k.outputs[2]);
  return OkStatus();
}

Status RmsNormBwdKernel(const KernelContext& k) {
  rmsnorm_bwd(k.inputs[0], k.inputs[1], k.inputs[2], k.inputs[3], k.outputs[0], k.outputs[1], k.workspace,
              k.inputs.size() == 5 ? &k.inputs[4] : nullptr);
  return OkStatus();
}

// rmsnorm of x, or with `addend` of sum = add(x, addend) (written to `sum_out`, then normalized).
void RmsNormRows(const Tensor& x, const Tensor* addend, const Tensor* sum_out, const Tensor& w, double eps,
                 const Tensor& y, const Tensor& rstd) {
  int64_t c = CheckRows(x, w, rstd);
  ZT_CHECK(y.dtype == x.dtype && y.shape == x.shape);
  if (addend) CheckResidual(x, *addend, *sum_out);
  int64_t rows = x.numel() / c;
  float* pr = rstd.as<float>();
  DispatchFloat(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* px = static_cast<const T*>(x.data);
    const T* padd = addend ? static_cast<const T*>(addend->data) : nullptr;
    T* psum = sum_out ? static_cast<T*>(sum_out->data) : nullptr;
    const T* pw = static_cast<const T*>(w.data);
    T* py = static_cast<T*>(y.data);
    ParallelFor(rows, RowGrain(c), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = padd ? AddRow(px + r * c, padd + r * c, psum + r * c, c) : px + r * c;
        T* yr = py + r * c;
        double sq = 0;
        for (int64_t j = 0; j < c; ++j) {
          double v = ToF32(xr[j]);
          sq += v * v;
        }
        float rs = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(c) + eps));
        pr[r] = rs;
        for (int64_t j = 0; j < c; ++j) yr[j] = FromF32<T>(ToF32(xr[j]) * rs * ToF32(pw[j]));
      }
    });
  });
}

}  // namespace

void rmsnorm_fwd(const Tensor& x, const Tensor& w, double eps, const Tensor& y, const Tensor& rstd) {
  RmsNormRows(x, nullptr, nullptr, w, eps, y, rstd);
}

void add_rmsnorm_fwd(const Tensor& a, const Tensor& b, const Tensor& w, double eps, const Tensor& sum,
                     const Tensor& y, const Tensor& rstd) {
  RmsNormRows(a, &b, &sum, w, eps, y, rstd);
}

void rmsnorm_bwd(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd, const Tensor& dx,
                 const Tensor& dw, const Tensor& workspace, const Tensor* dresidual) {
  int64_t c = CheckRows(x, w, rstd);
  ZT_CHECK(dy.dtype == x.dtype && dy.shape == x.shape && dx.dtype == x.dtype && dx.shape == x.shape);
  ZT_CHECK(dw.dtype == w.dtype && dw.shape == w.shape);
  if (dresidual) CheckResidual(dx, *dresidual, dx);
  int64_t rows = x.numel() / c;
  int64_t chunks = ir::RmsNormBwdChunks(rows);
  ZT_CHECK_GE(workspace.nbytes(), ir::RmsNormBwdWorkspaceBytes(rows, c)) << "rmsnorm_bwd: workspace too small";
  double* part = static_cast<double*>(workspace.data);  // (chunks, C)
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
        double* aw = part + k * c;
        std::fill(aw, aw + c, 0.0);
        for (int64_t r = rows * k / chunks; r < rows * (k + 1) / chunks; ++r) {
          const T* dyr = pdy + r * c;
          const T* xr = px + r * c;
          T* dxr = pdx + r * c;
          float rs = pr[r];
          double sgx = 0;  // sum of g * xhat over the row
          for (int64_t j = 0; j < c; ++j) {
            float xh = ToF32(xr[j]) * rs;
            float g = ToF32(dyr[j]) * ToF32(pw[j]);
            sgx += static_cast<double>(g) * xh;
          }
          float mgx = static_cast<float>(sgx * inv_c);
          for (int64_t j = 0; j < c; ++j) {
            float xh = ToF32(xr[j]) * rs;
            float d = ToF32(dyr[j]);
            float g = d * ToF32(pw[j]);
            dxr[j] = WithResidual(FromF32<T>(rs * (g - xh * mgx)), pres, r * c + j);
            aw[j] += static_cast<double>(d) * xh;
          }
        }
      }
    });
    T* pdw = static_cast<T*>(dw.data);
    ParallelFor(c, 256, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        double s = 0;
        for (int64_t k = 0; k < chunks; ++k) s += part[k * c + j];
        pdw[j] = FromF32<T>(static_cast<float>(s));
      }
    });
  });
}

void RegisterRmsNormCpuKernels(KernelRegistry& r) {
  r.Register("rmsnorm", DeviceKind::kCPU, RmsNormKernel);
  r.Register("add_rmsnorm", DeviceKind::kCPU, AddRmsNormKernel);
  r.Register("rmsnorm_bwd", DeviceKind::kCPU, RmsNormBwdKernel);
}

}  // namespace zt
