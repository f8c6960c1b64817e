// CPU cross-entropy kernels: per-row max-subtracted log-sum-exp over the valid columns (exp in f32,
// sums in double), per-row loss terms in the workspace, then one ordered double sum for the mean.
// Padding columns (>= classes) are never read; the backward fills them with zeros.
#include "kernels/cpu/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/parallel.h"
#include "ir/ops/cross_entropy.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/kernel.h"

namespace zt {
namespace {

// Valid columns of logits with v columns: classes, or v when classes is 0 (CHECKs 0 <= classes <= v).
int64_t ValidColumns(int64_t classes, int64_t v) {
  ZT_CHECK(classes >= 0 && classes <= v) << "cross_entropy: classes " << classes << " outside [0, V = " << v << "]";
  return classes == 0 ? v : classes;
}

// Whether row r's target counts; CHECK-fails on a target outside [0, n) that is not ignored
// (n: the valid columns of v).
inline bool Counted(const Tensor& targets, int64_t r, int64_t n, int64_t v, int64_t ignore_index, int64_t* t_out) {
  int64_t t = GetIndex(targets, r);
  *t_out = t;
  if (t == ignore_index) return false;
  ZT_CHECK(t >= 0 && t < n) << "cross_entropy: target " << t << " at row " << r << " is outside [0, "
                            << (n == v ? "V = " : "classes = ") << n << ")"
                            << (n == v ? "" : " (the logits have V = " + std::to_string(v) + " columns)")
                            << " and is not ignore_index (" << ignore_index
                            << "); the labels or the vocabulary size are wrong";
  return true;
}

int64_t RowGrain(int64_t v) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(v, 1)); }

Status CrossEntropyKernel(const KernelContext& c) {
  cross_entropy_fwd(c.inputs[0], c.inputs[1], c.attrs.GetInt("ignore_index"), c.attrs.GetInt("classes"),
                    c.outputs[0], c.outputs[1], c.workspace);
  return OkStatus();
}

Status CrossEntropyBwdKernel(const KernelContext& c) {
  cross_entropy_bwd(c.inputs[0], c.inputs[1], c.inputs[2], c.inputs[3], c.attrs.GetInt("ignore_index"),
                    c.attrs.GetInt("classes"), c.outputs[0]);
  return OkStatus();
}

}  // namespace

void cross_entropy_fwd(const Tensor& logits, const Tensor& targets, int64_t ignore_index, int64_t classes,
                       const Tensor& loss, const Tensor& lse, const Tensor& workspace) {
  ZT_CHECK(logits.shape.rank() >= 1);
  int64_t v = logits.shape[-1];
  int64_t n = ValidColumns(classes, v);
  int64_t rows = targets.numel();
  ZT_CHECK_EQ(logits.numel(), rows * v);
  ZT_CHECK(lse.dtype == DType::kF32 && lse.numel() == rows);
  ZT_CHECK(loss.dtype == DType::kF32 && loss.numel() == 1);
  ZT_CHECK_GE(workspace.nbytes(), ir::CrossEntropyWorkspaceBytes(rows));
  auto* nll = static_cast<double*>(workspace.data);  // (rows): loss term of each row, 0 if ignored
  float* lse_out = lse.as<float>();
  DispatchFloat(logits.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(logits.data);
    ParallelFor(rows, RowGrain(n), [&](int64_t rb, int64_t re) {
      for (int64_t r = rb; r < re; ++r) {
        const T* row = x + r * v;
        int64_t t;
        bool counted = Counted(targets, r, n, v, ignore_index, &t);
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < n; ++j) m = std::max(m, ToF32(row[j]));
        double s = 0;
        for (int64_t j = 0; j < n; ++j) s += std::exp(ToF32(row[j]) - m);
        double log_s = std::log(s);
        lse_out[r] = static_cast<float>(static_cast<double>(m) + log_s);
        // lse - x[t] = log(s) + (m - x[t]): no cancellation between two large numbers.
        nll[r] = counted ? log_s + (static_cast<double>(m) - static_cast<double>(ToF32(row[t]))) : 0.0;
      }
    });
  });
  double sum = 0;
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r) {
    sum += nll[r];
    count += GetIndex(targets, r) != ignore_index;
  }
  loss.as<float>()[0] = count == 0 ? 0.0f : static_cast<float>(sum / static_cast<double>(count));
}

void cross_entropy_bwd(const Tensor& dloss, const Tensor& logits, const Tensor& targets, const Tensor& lse,
                       int64_t ignore_index, int64_t classes, const Tensor& dlogits) {
  ZT_CHECK(logits.shape.rank() >= 1);
  int64_t v = logits.shape[-1];
  int64_t n = ValidColumns(classes, v);
  int64_t rows = targets.numel();
  ZT_CHECK_EQ(logits.numel(), rows * v);
  ZT_CHECK(dlogits.dtype == logits.dtype && dlogits.shape == logits.shape);
  ZT_CHECK(lse.numel() == rows);
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t t;
    count += Counted(targets, r, n, v, ignore_index, &t);
  }
  float scale = count == 0 ? 0.0f
                           : static_cast<float>(static_cast<double>(dloss.as<float>()[0]) / static_cast<double>(count));
  const float* l = lse.as<float>();
  DispatchFloat(logits.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(logits.data);
    T* dx = static_cast<T*>(dlogits.data);
    ParallelFor(rows, RowGrain(v), [&](int64_t rb, int64_t re) {
      for (int64_t r = rb; r < re; ++r) {
        const T* row = x + r * v;
        T* out = dx + r * v;
        int64_t t = GetIndex(targets, r);  // validated above
        if (t == ignore_index) {
          std::fill(out, out + v, FromF32<T>(0.0f));
          continue;
        }
        float lr = l[r];
        for (int64_t j = 0; j < n; ++j) {
          float p = std::exp(ToF32(row[j]) - lr);
          out[j] = FromF32<T>((p - (j == t ? 1.0f : 0.0f)) * scale);
        }
        std::fill(out + n, out + v, FromF32<T>(0.0f));  // padding columns: no class, no gradient
      }
    });
  });
}

void RegisterCrossEntropyCpuKernels(KernelRegistry& r) {
  r.Register("cross_entropy", DeviceKind::kCPU, CrossEntropyKernel);
  r.Register("cross_entropy_bwd", DeviceKind::kCPU, CrossEntropyBwdKernel);
}

}  // namespace zt
