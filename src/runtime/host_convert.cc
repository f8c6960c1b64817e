// Host conversions of parameter storage.
#include "runtime/host_convert.h"

namespace zt {

Status FromF32Buffer(const float* src, int64_t n, DType dt, std::vector<char>* out) {
  out->resize(static_cast<size_t>(n) * DTypeSize(dt));
  for (int64_t i = 0; i < n; ++i) {
    switch (dt) {
      case DType::kF32: reinterpret_cast<float*>(out->data())[i] = src[i]; break;
      case DType::kBF16: reinterpret_cast<BFloat16*>(out->data())[i] = FloatToBF16(src[i]); break;
      case DType::kF16: reinterpret_cast<Half*>(out->data())[i] = FloatToHalf(src[i]); break;
      default: return InvalidArgument("parameters must be floating");
    }
  }
  return OkStatus();
}

void ToF32Buffer(const char* src, DType dt, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    out[i] = dt == DType::kF32    ? reinterpret_cast<const float*>(src)[i]
             : dt == DType::kBF16 ? BF16ToFloat(reinterpret_cast<const BFloat16*>(src)[i])
                                  : HalfToFloat(reinterpret_cast<const Half*>(src)[i]);
  }
}


}  // namespace zt
