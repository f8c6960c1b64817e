// CPU matmul through OpenBLAS.
#include "kernels/cpu/matmul.h"

#include <cstring>

#include "backend/cpu/blas.h"
#include "backend/cpu/parallel.h"
#include "core/mem_category.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/kernel.h"

namespace zt {
namespace {

// Returns an f32 view of t: t itself if f32, else a converted copy carved from *ws.
const float* AsF32(const Tensor& t, char** ws) {
  if (t.dtype == DType::kF32) return static_cast<const float*>(t.data);
  float* dst = reinterpret_cast<float*>(*ws);
  *ws += AlignedBytes(static_cast<size_t>(t.numel()) * 4);
  DispatchFloat(t.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* src = static_cast<const T*>(t.data);
    ParallelFor(t.numel(), 1 << 14, [&](int64_t b, int64_t e) { LoadF32(src + b, dst + b, e - b); });
  });
  return dst;
}

}  // namespace

void matmul_fwd(const Tensor& a, const Tensor& b, const Tensor& bias, bool trans_a, bool trans_b,
                const Tensor& out, const Tensor& workspace) {
  const Shape& as = a.shape;
  const Shape& bs = b.shape;
  int64_t m = trans_a ? as[-1] : as[-2];
  int64_t k = trans_a ? as[-2] : as[-1];
  int64_t n = trans_b ? bs[-2] : bs[-1];
  int64_t batch_a = as.Product(0, as.rank() - 2);
  int64_t batch_b = bs.Product(0, bs.rank() - 2);
  int64_t batch = out.shape.Product(0, out.shape.rank() - 2);
  bool has_bias = bias.data != nullptr;

  char* ws = static_cast<char*>(workspace.data);
  const float* fa = AsF32(a, &ws);
  const float* fb = AsF32(b, &ws);
  const float* fbias = has_bias ? AsF32(bias, &ws) : nullptr;
  float* fout = out.dtype == DType::kF32 ? static_cast<float*>(out.data) : reinterpret_cast<float*>(ws);

  int64_t lda = trans_a ? m : k;
  int64_t ldb = trans_b ? k : n;
  float beta = 0.0f;
  if (has_bias) {
    // Pre-fill every output row with the bias, then accumulate the product onto it.
    int64_t rows = batch * m;
    ParallelFor(rows, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) std::memcpy(fout + r * n, fbias, static_cast<size_t>(n) * 4);
    });
    beta = 1.0f;
  }
  if (batch_b == 1 && batch_a == batch && !trans_a) {
    // b shared by all batches and a's rows contiguous: one GEMM over batch*m rows.
    Sgemm(false, trans_b, batch * m, n, k, 1.0f, fa, lda, fb, ldb, beta, fout, n);
  } else {
    for (int64_t i = 0; i < batch; ++i) {
      const float* pa = fa + (batch_a == 1 ? 0 : i * m * k);
      const float* pb = fb + (batch_b == 1 ? 0 : i * k * n);
      Sgemm(trans_a, trans_b, m, n, k, 1.0f, pa, lda, pb, ldb, beta, fout + i * m * n, n);
    }
  }
  if (out.dtype != DType::kF32) {
    DispatchFloat(out.dtype, [&](auto tag) {
      using T = decltype(tag);
      T* dst = static_cast<T*>(out.data);
      ParallelFor(out.numel(), 1 << 14, [&](int64_t b0, int64_t e) { StoreF32(fout + b0, dst + b0, e - b0); });
    });
  }
}

namespace {
Status MatmulKernel(const KernelContext& c) {
  Tensor bias = c.inputs.size() == 3 ? c.inputs[2] : Tensor();
  matmul_fwd(c.inputs[0], c.inputs[1], bias, c.attrs.GetBool("trans_a"), c.attrs.GetBool("trans_b"),
             c.outputs[0], c.workspace);
  return OkStatus();
}
}  // namespace

void RegisterMatmulCpuKernels(KernelRegistry& r) { r.Register("matmul", DeviceKind::kCPU, MatmulKernel); }

}  // namespace zt
