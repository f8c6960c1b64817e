// CPU kernels: cast. Every conversion is correctly rounded (to nearest, ties to even) and done
// element by element, so results are exact and independent of the thread count.
#include "kernels/cpu/cast.h"

#include <cmath>
#include <cstring>

#include "backend/cpu/parallel.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/kernel.h"

namespace zt {
namespace {

constexpr int64_t kGrain = 1 << 14;

template <typename I>
void IntToFloat(const Tensor& x, const Tensor& out) {
  const I* a = static_cast<const I*>(x.data);
  if (out.dtype == DType::kF32) {  // one correctly rounded conversion
    float* o = static_cast<float*>(out.data);
    ParallelFor(x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) o[i] = static_cast<float>(a[i]);
    });
    return;
  }
  DispatchFloat(out.dtype, [&](auto tag) {
    using U = decltype(tag);
    U* o = static_cast<U*>(out.data);
    ParallelFor(x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) o[i] = FromF32<U>(IntToF32RoundOdd(static_cast<int64_t>(a[i])));
    });
  });
}

Status CastKernel(const KernelContext& c) {
  cast_fwd(c.inputs[0], c.outputs[0]);
  return OkStatus();
}

}  // namespace

float IntToF32RoundOdd(int64_t v) {
  uint64_t u = v < 0 ? uint64_t{0} - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  float f;
  if (u < (uint64_t{1} << 24)) {
    f = static_cast<float>(u);
  } else {
    int top = 63 - __builtin_clzll(u);  // >= 24
    int shift = top - 23;
    uint64_t mant = u >> shift;  // 24 bits
    if (u & ((uint64_t{1} << shift) - 1)) mant |= 1;
    f = std::ldexp(static_cast<float>(mant), shift);  // both steps exact
  }
  return v < 0 ? -f : f;
}

void cast_fwd(const Tensor& x, const Tensor& out) {
  ZT_CHECK(x.shape == out.shape) << "cast " << x.shape << " -> " << out.shape;
  if (x.numel() == 0) return;
  if (x.dtype == out.dtype) {
    if (x.data == out.data) return;
    const char* src = static_cast<const char*>(x.data);
    char* dst = static_cast<char*>(out.data);
    int64_t n = static_cast<int64_t>(x.nbytes());
    ParallelFor(n, kGrain * 4, [&](int64_t begin, int64_t end) {
      std::memcpy(dst + begin, src + begin, static_cast<size_t>(end - begin));
    });
    return;
  }
  ZT_CHECK(IsFloating(out.dtype)) << "cast to " << DTypeName(out.dtype) << " is not supported";
  switch (x.dtype) {
    case DType::kI32: IntToFloat<int32_t>(x, out); return;
    case DType::kI64: IntToFloat<int64_t>(x, out); return;
    case DType::kU8: IntToFloat<uint8_t>(x, out); return;
    default: break;
  }
  DispatchFloat(x.dtype, [&](auto src_tag) {
    using T = decltype(src_tag);
    const T* a = static_cast<const T*>(x.data);
    DispatchFloat(out.dtype, [&](auto dst_tag) {
      using U = decltype(dst_tag);
      U* o = static_cast<U*>(out.data);
      ParallelFor(x.numel(), kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) o[i] = FromF32<U>(ToF32(a[i]));
      });
    });
  });
}

void RegisterCastCpuKernels(KernelRegistry& r) { r.Register("cast", DeviceKind::kCPU, CastKernel); }

}  // namespace zt
