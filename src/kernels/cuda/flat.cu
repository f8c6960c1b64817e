// CUDA kernels of the flat-buffer family: pack, unpack_into, view_slice.
// Conversions go through f32 exactly as the CPU does (widening is exact; narrowing rounds to
// nearest even), same-dtype pieces are plain device copies, so results are bit-identical to the
// CPU. One launch per piece; the padding of pack is zeroed with a memset.
#include <cuda_runtime.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "kernels/cuda/registry.h"
#include "kernels/cuda/vec.cuh"
#include "kernels/kernel.h"

namespace zt {
namespace {

constexpr int kThreads = 256;

// d[i] = D(float(s[i])) for i < n; 16-byte loads of S when s is 16-byte aligned.
template <typename S, typename D>
__global__ void convert_kernel(const S* __restrict__ s, D* __restrict__ d, int64_t n, bool vec) {
  int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t start = 0;
  if (vec) {
    constexpr int kN = dev::Vec<S>::kN;
    int64_t nv = n / kN;
    for (int64_t i = tid; i < nv; i += step) {
      dev::Vec<S> v = dev::LoadVec(s + i * kN);
#pragma unroll
      for (int k = 0; k < kN; ++k) d[i * kN + k] = dev::FromF32<D>(dev::ToF32(v.v[k]));
    }
    start = nv * kN;
  }
  for (int64_t i = start + tid; i < n; i += step) d[i] = dev::FromF32<D>(dev::ToF32(s[i]));
}

// dst[0, n) = convert(src[0, n)) between floating dtypes, queued on s.
void Convert(const void* src, DType st, void* dst, DType dt, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  if (st == dt) {
    ZT_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * DTypeSize(st), cudaMemcpyDeviceToDevice, s));
    return;
  }
  dev::DispatchFloat(st, [&](auto stag) {
    using S = decltype(stag);
    dev::DispatchFloat(dt, [&](auto dtag) {
      using D = decltype(dtag);
      constexpr int kN = dev::Vec<S>::kN;
      bool vec = dev::Aligned16(src);  // stores are per element
      convert_kernel<S, D><<<dev::GridFor(vec ? n / kN + 1 : n, kThreads), kThreads, 0, s>>>(
          static_cast<const S*>(src), static_cast<D*>(dst), n, vec);
    });
  });
  ZT_CUDA_CHECK(cudaGetLastError());
}

void pack_fwd(std::span<const Tensor> xs, const Tensor& flat, cudaStream_t s) {
  char* out = static_cast<char*>(flat.data);
  size_t esize = DTypeSize(flat.dtype);
  int64_t off = 0;
  for (const Tensor& x : xs) {
    Convert(x.data, x.dtype, out + off * esize, flat.dtype, x.numel(), s);
    off += x.numel();
  }
  ZT_CHECK_LE(off, flat.numel());
  size_t pad = static_cast<size_t>(flat.numel() - off) * esize;
  if (pad) ZT_CUDA_CHECK(cudaMemsetAsync(out + off * esize, 0, pad, s));
}

void unpack_into_fwd(const Tensor& flat, std::span<const Tensor> targets, cudaStream_t s) {
  const char* in = static_cast<const char*>(flat.data);
  size_t esize = DTypeSize(flat.dtype);
  int64_t off = 0;
  for (const Tensor& t : targets) {
    Convert(in + off * esize, flat.dtype, t.data, t.dtype, t.numel(), s);
    off += t.numel();
  }
  ZT_CHECK_LE(off, flat.numel());
}

Status PackKernel(const KernelContext& c) {
  pack_fwd(c.inputs, c.outputs[0], CudaStreamOf(c.stream));
  return OkStatus();
}
Status UnpackIntoKernel(const KernelContext& c) {
  for (size_t i = 0; i < c.outputs.size(); ++i)
    ZT_CHECK(c.outputs[i].data == c.inputs[i + 1].data) << "unpack_into must run in place";
  unpack_into_fwd(c.inputs[0], c.outputs, CudaStreamOf(c.stream));
  return OkStatus();
}
Status ViewSliceKernel(const KernelContext& c) {
  ZT_CHECK(c.outputs[0].data == static_cast<const char*>(c.inputs[0].data) +
                                    c.attrs.GetInt("offset") * static_cast<int64_t>(DTypeSize(c.inputs[0].dtype)))
      << "view_slice must be planned as a view";
  return OkStatus();
}

}  // namespace

void RegisterFlatCudaKernels(KernelRegistry& r) {
  r.Register("pack", DeviceKind::kCUDA, PackKernel);
  r.Register("unpack_into", DeviceKind::kCUDA, UnpackIntoKernel);
  r.Register("view_slice", DeviceKind::kCUDA, ViewSliceKernel);
}

}  // namespace zt
