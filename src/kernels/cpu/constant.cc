// CPU kernels: fill, arange.
#include "kernels/cpu/constant.h"

#include "kernels/cpu/dispatch.h"
#include "kernels/kernel.h"

namespace zt {

void fill_fwd(double value, const Tensor& out) {
  int64_t n = out.numel();
  switch (out.dtype) {
    case DType::kI32: for (int64_t i = 0; i < n; ++i) out.as<int32_t>()[i] = static_cast<int32_t>(value); return;
    case DType::kI64: for (int64_t i = 0; i < n; ++i) out.as<int64_t>()[i] = static_cast<int64_t>(value); return;
    case DType::kU8: for (int64_t i = 0; i < n; ++i) out.as<uint8_t>()[i] = static_cast<uint8_t>(value); return;
    default:
      for (int64_t i = 0; i < n; ++i) SetF32(out, i, static_cast<float>(value));
  }
}

void arange_fwd(const Tensor& out) {
  int64_t n = out.numel();
  switch (out.dtype) {
    case DType::kI32: for (int64_t i = 0; i < n; ++i) out.as<int32_t>()[i] = static_cast<int32_t>(i); return;
    case DType::kI64: for (int64_t i = 0; i < n; ++i) out.as<int64_t>()[i] = i; return;
    default:
      for (int64_t i = 0; i < n; ++i) SetF32(out, i, static_cast<float>(i));
  }
}

namespace {
Status FillKernel(const KernelContext& c) {
  fill_fwd(c.attrs.GetFloat("value"), c.outputs[0]);
  return OkStatus();
}
Status ArangeKernel(const KernelContext& c) {
  arange_fwd(c.outputs[0]);
  return OkStatus();
}
}  // namespace

void RegisterConstantCpuKernels(KernelRegistry& r) {
  r.Register("fill", DeviceKind::kCPU, FillKernel);
  r.Register("arange", DeviceKind::kCPU, ArangeKernel);
}

}  // namespace zt
