// CUDA kernel of cast (semantics in ir/ops/cast.cc, reference in kernels/cpu/cast.cc). Every
// conversion is correctly rounded and bit-identical to the CPU's:
//   float -> float: through f32 (exact), then one rounding to nearest even (vec.cuh FromF32);
//   i32/i64 -> f32: one correctly rounded conversion (cvt.rn);
//   i32/i64 -> bf16/f16: round to odd into f32 (exact when it fits 24 bits), then to nearest
//   even, which is one correct rounding overall (no double-rounding error), as the CPU does;
//   u8 -> any float: exact; same dtype: a device-to-device copy on the stream.
// Elementwise, so independent of the launch shape; 16-byte loads/stores of the wider side when
// both pointers are 16-byte aligned, scalar otherwise and for the tail.
#include <cuda_runtime.h>

#include <type_traits>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "kernels/cuda/registry.h"
#include "kernels/cuda/vec.cuh"
#include "kernels/kernel.h"

namespace zt {
namespace {

constexpr int kThreads = 256;

// An integer as f32 rounded to odd (kernels/cpu/cast.cc IntToF32RoundOdd): magnitudes below 2^24
// are exact; above, the bits below the 24 kept are OR-ed into the last kept bit (sticky), so the
// following rounding to 8 or 11 mantissa bits sees the exact tie/no-tie information.
__device__ __forceinline__ float IntToF32RoundOdd(long long v) {
  unsigned long long u = v < 0 ? 0ull - static_cast<unsigned long long>(v) : static_cast<unsigned long long>(v);
  float f;
  if (u < (1ull << 24)) {
    f = static_cast<float>(static_cast<unsigned>(u));
  } else {
    int top = 63 - __clzll(static_cast<long long>(u));  // >= 24
    int shift = top - 23;
    unsigned long long mant = u >> shift;  // 24 bits
    if (u & ((1ull << shift) - 1)) mant |= 1;
    f = scalbnf(static_cast<float>(static_cast<unsigned>(mant)), shift);  // both exact
  }
  return v < 0 ? -f : f;
}

// Conversion of one element, In -> Out.
template <typename Out, typename In>
__device__ __forceinline__ Out Convert(In x) {
  if constexpr (std::is_same_v<In, int32_t> || std::is_same_v<In, int64_t>) {
    if constexpr (std::is_same_v<Out, float>) {
      return __ll2float_rn(static_cast<long long>(x));
    } else {
      return dev::FromF32<Out>(IntToF32RoundOdd(static_cast<long long>(x)));
    }
  } else if constexpr (std::is_same_v<In, uint8_t>) {
    return dev::FromF32<Out>(static_cast<float>(x));  // exact in every float type
  } else {
    return dev::FromF32<Out>(dev::ToF32(x));
  }
}

template <typename T, int N>
struct alignas(sizeof(T) * N) Chunk {
  T v[N];
};

// vec: both pointers 16-byte aligned; chunks of N elements (N * max(sizeof) == 16 bytes).
template <typename Out, typename In>
__global__ void cast_fwd_kernel(const In* x, Out* o, int64_t n, bool vec) {
  constexpr int kN = 16 / (sizeof(In) > sizeof(Out) ? sizeof(In) : sizeof(Out));
  int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t done = 0;
  if (vec) {
    int64_t nc = n / kN;
    for (int64_t c = tid; c < nc; c += stride) {
      Chunk<In, kN> a = reinterpret_cast<const Chunk<In, kN>*>(x)[c];
      Chunk<Out, kN> r;
#pragma unroll
      for (int k = 0; k < kN; ++k) r.v[k] = Convert<Out>(a.v[k]);
      reinterpret_cast<Chunk<Out, kN>*>(o)[c] = r;
    }
    done = nc * kN;
  }
  for (int64_t i = done + tid; i < n; i += stride) o[i] = Convert<Out>(x[i]);
}

template <typename Out, typename In>
void Launch(const void* x, void* o, int64_t n, cudaStream_t s) {
  constexpr int kN = 16 / (sizeof(In) > sizeof(Out) ? sizeof(In) : sizeof(Out));
  const In* a = static_cast<const In*>(x);
  Out* b = static_cast<Out*>(o);
  bool vec = dev::Aligned16(a, b);
  cast_fwd_kernel<Out, In><<<dev::GridFor(vec ? n / kN + 1 : n, kThreads), kThreads, 0, s>>>(a, b, n, vec);
  ZT_CUDA_CHECK(cudaGetLastError());
}

template <typename Out>
void FromAny(const Tensor& x, const Tensor& out, cudaStream_t s) {
  int64_t n = x.numel();
  switch (x.dtype) {
    case DType::kF32: Launch<Out, float>(x.data, out.data, n, s); return;
    case DType::kBF16: Launch<Out, __nv_bfloat16>(x.data, out.data, n, s); return;
    case DType::kF16: Launch<Out, __half>(x.data, out.data, n, s); return;
    case DType::kI32: Launch<Out, int32_t>(x.data, out.data, n, s); return;
    case DType::kI64: Launch<Out, int64_t>(x.data, out.data, n, s); return;
    case DType::kU8: Launch<Out, uint8_t>(x.data, out.data, n, s); return;
  }
  ZT_CHECK(false) << "cast from " << DTypeName(x.dtype);
}

Status CastKernel(const KernelContext& c) {
  const Tensor& x = c.inputs[0];
  const Tensor& out = c.outputs[0];
  ZT_CHECK(x.shape == out.shape) << "cast " << x.shape << " -> " << out.shape;
  if (x.numel() == 0) return OkStatus();
  cudaStream_t s = CudaStreamOf(c.stream);
  if (x.dtype == out.dtype) {
    if (x.data != out.data) {
      ZT_CUDA_CHECK(cudaMemcpyAsync(out.data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, s));
    }
    return OkStatus();
  }
  ZT_CHECK(IsFloating(out.dtype)) << "cast to " << DTypeName(out.dtype) << " is not supported";
  switch (out.dtype) {
    case DType::kF32: FromAny<float>(x, out, s); break;
    case DType::kBF16: FromAny<__nv_bfloat16>(x, out, s); break;
    case DType::kF16: FromAny<__half>(x, out, s); break;
    default: break;
  }
  return OkStatus();
}

}  // namespace

void RegisterCastCudaKernels(KernelRegistry& r) { r.Register("cast", DeviceKind::kCUDA, CastKernel); }

}  // namespace zt
