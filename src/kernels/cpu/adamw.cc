// CPU AdamW: the same float operations, in the same order, as torch.optim.AdamW's single-tensor
// path, so results agree to rounding. adamw_multi runs adamw_fwd on each of its tensors in turn,
// so it is bit-identical to the k adamw nodes it replaces by construction.
#include "kernels/cpu/adamw.h"

#include <cmath>

#include "backend/cpu/parallel.h"
#include "ir/ops/adamw.h"
#include "kernels/adamw_multi_layout.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/kernel.h"

namespace zt {

void adamw_fwd(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
               const float* scalars, float grad_sumsq, const Tensor& master, const AdamWHyper& h) {
  if (!std::isfinite(grad_sumsq)) return;  // overflow: skip the step, leave every state as it is
  double lr = scalars[ir::kAdamWLr];
  double bc1 = scalars[ir::kAdamWBiasCorrection1];
  double bc2 = scalars[ir::kAdamWBiasCorrection2];
  double mult = scalars[ir::kAdamWGradMultiplier];
  double norm = std::sqrt(static_cast<double>(grad_sumsq)) * mult;
  float gmult = static_cast<float>(mult * ir::ClipCoefficient(norm, scalars[ir::kAdamWMaxNorm]));
  float decay = static_cast<float>(1.0 - lr * h.weight_decay);
  float b1 = static_cast<float>(h.beta1), one_minus_b1 = static_cast<float>(1.0 - h.beta1);
  float b2 = static_cast<float>(h.beta2), one_minus_b2 = static_cast<float>(1.0 - h.beta2);
  float neg_step = static_cast<float>(-(lr / bc1));
  float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  float eps = static_cast<float>(h.eps);
  float* m = exp_avg.as<float>();
  float* v = exp_avg_sq.as<float>();
  float* w = master.data ? master.as<float>() : nullptr;
  DispatchFloat(param.dtype, [&](auto ptag) {
    using P = decltype(ptag);
    P* p = static_cast<P*>(param.data);
    DispatchFloat(grad.dtype, [&](auto gtag) {
      using G = decltype(gtag);
      const G* g = static_cast<const G*>(grad.data);
      ParallelFor(param.numel(), 4096, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          float gi = ToF32(g[i]);
          if (gmult != 1.0f) gi *= gmult;
          float pi = (w ? w[i] : ToF32(p[i])) * decay;
          float mi = m[i] * b1 + gi * one_minus_b1;
          float vi = v[i] * b2 + one_minus_b2 * gi * gi;
          float denom = std::sqrt(vi) / bc2_sqrt + eps;
          pi = pi + neg_step * (mi / denom);
          m[i] = mi;
          v[i] = vi;
          if (w) w[i] = pi;
          p[i] = FromF32<P>(pi);
        }
      });
    });
  });
}

namespace {

AdamWHyper HyperOf(const ir::AttrMap& a) {
  return {a.GetFloat("beta1"), a.GetFloat("beta2"), a.GetFloat("eps"), a.GetFloat("weight_decay")};
}

Status AdamWKernel(const KernelContext& c) {
  // Outputs alias inputs (in place): write through the outputs, read through the inputs.
  ZT_CHECK(c.outputs[0].data == c.inputs[0].data && c.outputs[1].data == c.inputs[2].data &&
           c.outputs[2].data == c.inputs[3].data)
      << "adamw must run in place";
  Tensor master = c.inputs.size() == 7 ? c.outputs[3] : Tensor();
  adamw_fwd(c.outputs[0], c.inputs[1], c.outputs[1], c.outputs[2], c.inputs[4].as<float>(),
            c.inputs[5].as<float>()[0], master, HyperOf(c.attrs));
  return OkStatus();
}

// k adamw updates, one tensor after the other (ir::AdamWMultiLayout).
Status AdamWMultiKernel(const KernelContext& c) {
  const auto l = AdamWMultiLayoutOf(c);
  const int64_t k = l.k;
  const float* scalars = c.inputs[l.kScalarsInput].as<float>();
  const float grad_sumsq = c.inputs[l.kGradSumsqInput].as<float>()[0];
  const AdamWHyper h = HyperOf(c.attrs);
  auto out = [&](int64_t input) -> const Tensor& { return c.outputs[input - ir::kAdamWMultiShift]; };
  for (int64_t i = 0; i < k; ++i) {
    Tensor master = l.masters ? out(l.master(i)) : Tensor();
    adamw_fwd(out(l.param(i)), c.inputs[l.grad(i)], out(l.exp_avg(i)), out(l.exp_avg_sq(i)), scalars, grad_sumsq,
              master, h);
  }
  return OkStatus();
}

}  // namespace

void RegisterAdamWCpuKernels(KernelRegistry& r) {
  r.Register("adamw", DeviceKind::kCPU, AdamWKernel);
  r.Register("adamw_multi", DeviceKind::kCPU, AdamWMultiKernel);
}

}  // namespace zt
