// CPU kernels: pack, unpack_into, view_slice.
#include "kernels/cpu/flat.h"

#include <cstring>

#include "backend/cpu/parallel.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/kernel.h"

namespace zt {
namespace {

// dst[i] = convert(src[i]) for n elements between floating dtypes.
void Convert(const void* src, DType st, void* dst, DType dt, int64_t n) {
  if (st == dt) {
    std::memcpy(dst, src, static_cast<size_t>(n) * DTypeSize(st));
    return;
  }
  DispatchFloat(st, [&](auto stag) {
    using S = decltype(stag);
    DispatchFloat(dt, [&](auto dtag) {
      using D = decltype(dtag);
      const S* s = static_cast<const S*>(src);
      D* d = static_cast<D*>(dst);
      ParallelFor(n, 1 << 14, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) d[i] = FromF32<D>(ToF32(s[i]));
      });
    });
  });
}

}  // namespace

void pack_fwd(std::span<const Tensor> xs, const Tensor& flat) {
  char* out = static_cast<char*>(flat.data);
  size_t esize = DTypeSize(flat.dtype);
  int64_t off = 0;
  for (const Tensor& x : xs) {
    Convert(x.data, x.dtype, out + off * esize, flat.dtype, x.numel());
    off += x.numel();
  }
  ZT_CHECK_LE(off, flat.numel());
  std::memset(out + off * esize, 0, static_cast<size_t>(flat.numel() - off) * esize);
}

void unpack_into_fwd(const Tensor& flat, std::span<const Tensor> targets) {
  const char* in = static_cast<const char*>(flat.data);
  size_t esize = DTypeSize(flat.dtype);
  int64_t off = 0;
  for (const Tensor& t : targets) {
    Convert(in + off * esize, flat.dtype, t.data, t.dtype, t.numel());
    off += t.numel();
  }
  ZT_CHECK_LE(off, flat.numel());
}

namespace {
Status PackKernel(const KernelContext& c) {
  pack_fwd(c.inputs, c.outputs[0]);
  return OkStatus();
}
Status UnpackIntoKernel(const KernelContext& c) {
  for (size_t i = 0; i < c.outputs.size(); ++i)
    ZT_CHECK(c.outputs[i].data == c.inputs[i + 1].data) << "unpack_into must run in place";
  unpack_into_fwd(c.inputs[0], c.outputs);
  return OkStatus();
}
Status ViewSliceKernel(const KernelContext& c) {
  ZT_CHECK(c.outputs[0].data == static_cast<const char*>(c.inputs[0].data) +
                                    c.attrs.GetInt("offset") * static_cast<int64_t>(DTypeSize(c.inputs[0].dtype)))
      << "view_slice must be planned as a view";
  return OkStatus();
}
}  // namespace

void RegisterFlatCpuKernels(KernelRegistry& r) {
  r.Register("pack", DeviceKind::kCPU, PackKernel);
  r.Register("unpack_into", DeviceKind::kCPU, UnpackIntoKernel);
  r.Register("view_slice", DeviceKind::kCPU, ViewSliceKernel);
}

}  // namespace zt
