// CUDA kernels of the constant family: fill and arange.
// fill: the element's bit pattern is computed on the host with the same conversion the CPU
// kernel uses (core/dtype.h), then replicated by the device (16-byte stores when aligned), so the
// result is bit-identical to the CPU for every dtype. arange: element i is i converted exactly as
// the CPU does (int64 -> float rounds to nearest even, then to the storage type).
#include <cuda_runtime.h>

#include <cstring>
#include <type_traits>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "kernels/cuda/registry.h"
#include "kernels/cuda/vec.cuh"
#include "kernels/kernel.h"

namespace zt {
namespace {

constexpr int kThreads = 256;

// out[i] = v for i < n. With `vec`, out is 16-byte aligned and the body is written as uint4
// copies of `pattern` (16 bytes of repeated v), the tail element by element.
template <typename E>
__global__ void fill_fwd_kernel(E* out, int64_t n, E v, uint4 pattern, bool vec) {
  int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t start = 0;
  if (vec) {
    constexpr int64_t kPer = 16 / sizeof(E);
    int64_t nv = n / kPer;
    uint4* o = reinterpret_cast<uint4*>(out);
    for (int64_t i = tid; i < nv; i += stride) o[i] = pattern;
    start = nv * kPer;
  }
  for (int64_t i = start + tid; i < n; i += stride) out[i] = v;
}

template <typename E>
void LaunchFill(void* out, int64_t n, const void* element, cudaStream_t s) {
  E v;
  std::memcpy(&v, element, sizeof(E));
  uint4 pattern;
  unsigned char bytes[16];
  for (size_t k = 0; k < 16; k += sizeof(E)) std::memcpy(bytes + k, &v, sizeof(E));
  std::memcpy(&pattern, bytes, 16);
  bool vec = dev::Aligned16(out);
  int64_t work = vec ? n / static_cast<int64_t>(16 / sizeof(E)) + 16 : n;
  fill_fwd_kernel<E><<<dev::GridFor(work, kThreads), kThreads, 0, s>>>(static_cast<E*>(out), n, v, pattern, vec);
  ZT_CUDA_CHECK(cudaGetLastError());
}

// The storage bits of `value` as the CPU kernel would write them.
void ElementBits(double value, DType dtype, unsigned char* out) {
  switch (dtype) {
    case DType::kI32: {
      int32_t x = static_cast<int32_t>(value);
      std::memcpy(out, &x, 4);
      return;
    }
    case DType::kI64: {
      int64_t x = static_cast<int64_t>(value);
      std::memcpy(out, &x, 8);
      return;
    }
    case DType::kU8: out[0] = static_cast<uint8_t>(value); return;
    case DType::kF32: {
      float x = static_cast<float>(value);
      std::memcpy(out, &x, 4);
      return;
    }
    case DType::kBF16: {
      BFloat16 x = FloatToBF16(static_cast<float>(value));
      std::memcpy(out, &x.bits, 2);
      return;
    }
    case DType::kF16: {
      Half x = FloatToHalf(static_cast<float>(value));
      std::memcpy(out, &x.bits, 2);
      return;
    }
  }
  ZT_CHECK(false) << "fill: dtype " << DTypeName(dtype);
}

void fill_fwd(double value, const Tensor& out, cudaStream_t s) {
  int64_t n = out.numel();
  if (n == 0) return;
  unsigned char bits[8] = {0};
  ElementBits(value, out.dtype, bits);
  size_t esize = DTypeSize(out.dtype);
  bool all_same = true;
  for (size_t k = 1; k < esize; ++k) all_same = all_same && bits[k] == bits[0];
  if (all_same) {  // 0, -1 (as ints), 0xFF.. patterns: a plain memset
    ZT_CUDA_CHECK(cudaMemsetAsync(out.data, bits[0], out.nbytes(), s));
    return;
  }
  switch (esize) {
    case 2: LaunchFill<uint16_t>(out.data, n, bits, s); return;
    case 4: LaunchFill<uint32_t>(out.data, n, bits, s); return;
    case 8: LaunchFill<uint64_t>(out.data, n, bits, s); return;
    default: ZT_CHECK(false) << "fill: element size " << esize;
  }
}

template <typename T>
__global__ void arange_fwd_kernel(T* out, int64_t n) {
  int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    if constexpr (std::is_integral_v<T>) {
      out[i] = static_cast<T>(i);
    } else {
      out[i] = dev::FromF32<T>(static_cast<float>(i));
    }
  }
}

void arange_fwd(const Tensor& out, cudaStream_t s) {
  int64_t n = out.numel();
  if (n == 0) return;
  unsigned blocks = dev::GridFor(n, kThreads);
  switch (out.dtype) {
    case DType::kI32: arange_fwd_kernel<<<blocks, kThreads, 0, s>>>(static_cast<int32_t*>(out.data), n); break;
    case DType::kI64: arange_fwd_kernel<<<blocks, kThreads, 0, s>>>(static_cast<int64_t*>(out.data), n); break;
    default:
      dev::DispatchFloat(out.dtype, [&](auto tag) {
        using T = decltype(tag);
        arange_fwd_kernel<<<blocks, kThreads, 0, s>>>(static_cast<T*>(out.data), n);
      });
  }
  ZT_CUDA_CHECK(cudaGetLastError());
}

Status FillKernel(const KernelContext& c) {
  fill_fwd(c.attrs.GetFloat("value"), c.outputs[0], CudaStreamOf(c.stream));
  return OkStatus();
}
Status ArangeKernel(const KernelContext& c) {
  arange_fwd(c.outputs[0], CudaStreamOf(c.stream));
  return OkStatus();
}

}  // namespace

void RegisterConstantCudaKernels(KernelRegistry& r) {
  r.Register("fill", DeviceKind::kCUDA, FillKernel);
  r.Register("arange", DeviceKind::kCUDA, ArangeKernel);
}

}  // namespace zt
