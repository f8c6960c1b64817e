// CPU attention: the reference kernels. Forward, per (b, h) and query t: logits in f64 over the
// visible keys, max-subtracted softmax, lse = max + log(sum), out = sum_s p_s v_s / sum. Backward,
// per (b, kv head): for each query head of the group and each t, p is recomputed as
// exp(logit - lse) and dq, dk, dv accumulated (dk, dv in f32 workspace, dq rows in f64).
// Invariants: no T x S matrix is stored; every reduction runs inside one work item in a fixed
// order, so results do not depend on the thread count; scratch comes only from the workspace,
// laid out as the op's workspace rule (ir/ops/attention.cc) sizes it.
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "backend/cpu/parallel.h"
#include "core/mem_category.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/kernel.h"

namespace zt {
namespace {

struct Dims {
  int64_t B, T, H, S, Hkv, D;
  int64_t group() const { return H / Hkv; }
  // Index of element d of row (b, t, h) in a (B, T, H, D) tensor, and of (b, s, kh) in (B, S, Hkv, D).
  int64_t QRow(int64_t b, int64_t t, int64_t h) const { return ((b * T + t) * H + h) * D; }
  int64_t KRow(int64_t b, int64_t s, int64_t kh) const { return ((b * S + s) * Hkv + kh) * D; }
  // Number of keys query t sees: bottom-right aligned causal mask s <= t + (S - T).
  int64_t Visible(bool causal, int64_t t) const { return causal ? std::min(S, t + S - T + 1) : S; }
};

Dims CheckDims(const Tensor& q, const Tensor& k, const Tensor& v) {
  ZT_CHECK(q.shape.rank() == 4 && k.shape.rank() == 4 && k.shape == v.shape);
  ZT_CHECK(q.dtype == k.dtype && q.dtype == v.dtype);
  Dims d{q.shape[0], q.shape[1], q.shape[2], k.shape[1], k.shape[2], q.shape[3]};
  ZT_CHECK(k.shape[0] == d.B && k.shape[3] == d.D && d.Hkv > 0 && d.H % d.Hkv == 0 && d.S > 0);
  return d;
}

double ResolveScale(double scale, int64_t D) { return scale == 0.0 ? 1.0 / std::sqrt(static_cast<double>(D)) : scale; }

template <typename T>
double Dot(const float* a, const T* b, int64_t n) {
  double acc = 0;
  for (int64_t i = 0; i < n; ++i) acc += static_cast<double>(a[i]) * ToF32(b[i]);
  return acc;
}

template <typename T>
void Forward(const Dims& d, const T* q, const T* k, const T* v, bool causal, double scale, T* out, float* lse,
             char* ws, size_t slot) {
  ParallelFor(d.B * d.H, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t b = item / d.H, h = item % d.H, kh = h / d.group();
      char* base = ws + item * slot;
      double* logits = reinterpret_cast<double*>(base);                 // (S)
      double* acc = logits + d.S;                                       // (D)
      float* qf = reinterpret_cast<float*>(acc + d.D);                  // (D)
      for (int64_t t = 0; t < d.T; ++t) {
        const int64_t n = d.Visible(causal, t);
        LoadF32(q + d.QRow(b, t, h), qf, d.D);
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t s = 0; s < n; ++s) {
          logits[s] = scale * Dot(qf, k + d.KRow(b, s, kh), d.D);
          mx = std::max(mx, logits[s]);
        }
        double sum = 0;
        for (int64_t s = 0; s < n; ++s) {
          logits[s] = std::exp(logits[s] - mx);
          sum += logits[s];
        }
        std::fill(acc, acc + d.D, 0.0);
        for (int64_t s = 0; s < n; ++s) {
          const T* vr = v + d.KRow(b, s, kh);
          const double p = logits[s];
          for (int64_t j = 0; j < d.D; ++j) acc[j] += p * ToF32(vr[j]);
        }
        T* orow = out + d.QRow(b, t, h);
        for (int64_t j = 0; j < d.D; ++j) orow[j] = FromF32<T>(static_cast<float>(acc[j] / sum));
        lse[(b * d.H + h) * d.T + t] = static_cast<float>(mx + std::log(sum));
      }
    }
  });
}

template <typename T>
void Backward(const Dims& d, const T* dout, const T* q, const T* k, const T* v, const T* out, const float* lse,
              const float* dlse, bool causal, double scale, T* dq, T* dk, T* dv, char* ws, size_t slot) {
  ParallelFor(d.B * d.Hkv, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t b = item / d.Hkv, kh = item % d.Hkv;
      char* base = ws + item * slot;
      double* dq_acc = reinterpret_cast<double*>(base);                 // (D)
      float* dk_acc = reinterpret_cast<float*>(dq_acc + d.D);           // (S, D)
      float* dv_acc = dk_acc + d.S * d.D;                               // (S, D)
      float* qf = dv_acc + d.S * d.D;                                   // (D)
      float* dof = qf + d.D;                                            // (D)
      std::fill(dk_acc, dk_acc + 2 * d.S * d.D, 0.0f);
      for (int64_t h = kh * d.group(); h < (kh + 1) * d.group(); ++h) {
        for (int64_t t = 0; t < d.T; ++t) {
          const int64_t n = d.Visible(causal, t);
          const int64_t row = d.QRow(b, t, h);
          LoadF32(q + row, qf, d.D);
          LoadF32(dout + row, dof, d.D);
          const int64_t li = (b * d.H + h) * d.T + t;
          // D_t = <dout, out> - dlse: the softmax-backward row term (dlse adds p * dlse to ds).
          double delta = Dot(dof, out + row, d.D) - (dlse ? static_cast<double>(dlse[li]) : 0.0);
          const double l = lse[li];
          std::fill(dq_acc, dq_acc + d.D, 0.0);
          for (int64_t s = 0; s < n; ++s) {
            const T* kr = k + d.KRow(b, s, kh);
            const T* vr = v + d.KRow(b, s, kh);
            const double p = std::exp(scale * Dot(qf, kr, d.D) - l);
            const double ds = p * (Dot(dof, vr, d.D) - delta);
            const float pf = static_cast<float>(p);
            const float dsf = static_cast<float>(scale * ds);
            float* dkr = dk_acc + s * d.D;
            float* dvr = dv_acc + s * d.D;
            for (int64_t j = 0; j < d.D; ++j) {
              dvr[j] += pf * dof[j];
              dkr[j] += dsf * qf[j];
              dq_acc[j] += ds * ToF32(kr[j]);
            }
          }
          T* dqr = dq + row;
          for (int64_t j = 0; j < d.D; ++j) dqr[j] = FromF32<T>(static_cast<float>(scale * dq_acc[j]));
        }
      }
      for (int64_t s = 0; s < d.S; ++s) {
        StoreF32(dk_acc + s * d.D, dk + d.KRow(b, s, kh), d.D);
        StoreF32(dv_acc + s * d.D, dv + d.KRow(b, s, kh), d.D);
      }
    }
  });
}

}  // namespace

void attention_fwd(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double scale,
                   const Tensor& out, const Tensor& lse, const Tensor& workspace) {
  const Dims d = CheckDims(q, k, v);
  ZT_CHECK(out.dtype == q.dtype && out.shape == q.shape);
  ZT_CHECK(lse.dtype == DType::kF32 && lse.shape == Shape({d.B, d.H, d.T}));
  ZT_CHECK(!causal || d.S >= d.T) << "attention: causal needs S >= T";
  // Layout per (b, h) item, as the op's workspace rule sizes it: logits f64 (S), acc f64 (D), q f32 (D).
  const size_t slot = AlignedBytes(static_cast<size_t>(d.S) * 8 + static_cast<size_t>(d.D) * 12);
  ZT_CHECK(workspace.nbytes() >= static_cast<size_t>(d.B * d.H) * slot) << "attention: workspace too small";
  ZT_CHECK(d.B * d.H == 0 || reinterpret_cast<uintptr_t>(workspace.data) % 8 == 0);
  const double sc = ResolveScale(scale, d.D);
  DispatchFloat(q.dtype, [&](auto tag) {
    using T = decltype(tag);
    Forward<T>(d, static_cast<const T*>(q.data), static_cast<const T*>(k.data), static_cast<const T*>(v.data), causal,
               sc, static_cast<T*>(out.data), static_cast<float*>(lse.data), static_cast<char*>(workspace.data), slot);
  });
}

void attention_bwd(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                   const Tensor& lse, const Tensor& dlse, bool causal, double scale, const Tensor& dq,
                   const Tensor& dk, const Tensor& dv, const Tensor& workspace) {
  const Dims d = CheckDims(q, k, v);
  ZT_CHECK(dout.dtype == q.dtype && dout.shape == q.shape && out.dtype == q.dtype && out.shape == q.shape);
  ZT_CHECK(lse.dtype == DType::kF32 && lse.shape == Shape({d.B, d.H, d.T}));
  ZT_CHECK(dlse.data == nullptr || (dlse.dtype == DType::kF32 && dlse.shape == lse.shape));
  ZT_CHECK(dq.dtype == q.dtype && dq.shape == q.shape && dk.dtype == k.dtype && dk.shape == k.shape &&
           dv.dtype == v.dtype && dv.shape == v.shape);
  ZT_CHECK(!causal || d.S >= d.T) << "attention_bwd: causal needs S >= T";
  // Layout per (b, kv head) item, as the op's workspace rule sizes it:
  // dq acc f64 (D), dk acc f32 (S, D), dv acc f32 (S, D), q row f32 (D), dout row f32 (D).
  const size_t S = static_cast<size_t>(d.S), D = static_cast<size_t>(d.D);
  const size_t slot = AlignedBytes(2 * S * D * 4 + D * 16);
  ZT_CHECK(workspace.nbytes() >= static_cast<size_t>(d.B * d.Hkv) * slot) << "attention_bwd: workspace too small";
  ZT_CHECK(d.B * d.Hkv == 0 || reinterpret_cast<uintptr_t>(workspace.data) % 8 == 0);
  const double sc = ResolveScale(scale, d.D);
  DispatchFloat(q.dtype, [&](auto tag) {
    using T = decltype(tag);
    Backward<T>(d, static_cast<const T*>(dout.data), static_cast<const T*>(q.data), static_cast<const T*>(k.data),
                static_cast<const T*>(v.data), static_cast<const T*>(out.data), static_cast<const float*>(lse.data),
                static_cast<const float*>(dlse.data), causal, sc, static_cast<T*>(dq.data), static_cast<T*>(dk.data),
                static_cast<T*>(dv.data), static_cast<char*>(workspace.data), slot);
  });
}

namespace {

Status AttentionKernel(const KernelContext& c) {
  attention_fwd(c.inputs[0], c.inputs[1], c.inputs[2], c.attrs.GetBool("causal"), c.attrs.GetFloat("scale"),
                c.outputs[0], c.outputs[1], c.workspace);
  return OkStatus();
}

Status AttentionBwdKernel(const KernelContext& c) {
  Tensor dlse = c.inputs.size() == 7 ? c.inputs[6] : Tensor();
  attention_bwd(c.inputs[0], c.inputs[1], c.inputs[2], c.inputs[3], c.inputs[4], c.inputs[5], dlse,
                c.attrs.GetBool("causal"), c.attrs.GetFloat("scale"), c.outputs[0], c.outputs[1], c.outputs[2],
                c.workspace);
  return OkStatus();
}

}  // namespace

void RegisterAttentionCpuKernels(KernelRegistry& r) {
  r.Register("attention", DeviceKind::kCPU, AttentionKernel);
  r.Register("attention_bwd", DeviceKind::kCPU, AttentionBwdKernel);
}

}  // namespace zt
