// DType: the element types ztrain stores (f32 bf16 f16 i32 i64 u8), their sizes and names, and
// exact conversions between f32 and the two 16-bit float formats. Invariants: conversions to
// bf16/f16 round to nearest, ties to even; infinities stay infinities; NaN stays NaN (payload kept
// where the narrower format can hold it). Conversions from bf16/f16 to f32 are exact.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace zt {

enum class DType : uint8_t { kF32 = 0, kBF16, kF16, kI32, kI64, kU8 };
inline constexpr int kNumDTypes = 6;

size_t DTypeSize(DType t);
const char* DTypeName(DType t);  // "f32", "bf16", "f16", "i32", "i64", "u8"
std::optional<DType> ParseDType(std::string_view name);
bool IsFloating(DType t);
bool IsInteger(DType t);

struct BFloat16 {
  uint16_t bits = 0;
};
struct Half {
  uint16_t bits = 0;
};

inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float BitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float BF16ToFloat(BFloat16 h) { return BitsToFloat(static_cast<uint32_t>(h.bits) << 16); }

inline BFloat16 FloatToBF16(float f) {
  uint32_t x = FloatBits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep sign and top payload, force quiet bit.
    return BFloat16{static_cast<uint16_t>((x >> 16) | 0x0040u)};
  }
  uint32_t bias = 0x7fffu + ((x >> 16) & 1u);  // round to nearest, ties to even
  return BFloat16{static_cast<uint16_t>((x + bias) >> 16)};
}

namespace internal {
// f32 bit patterns of all 65,536 f16 values, computed at compile time (dtype.cc).
extern const std::array<uint32_t, 65536> kHalfToFloatBits;
}  // namespace internal

inline float HalfToFloat(Half h) { return BitsToFloat(internal::kHalfToFloatBits[h.bits]); }
Half FloatToHalf(float f);

// Load/store helpers that kernels use to compute in f32 over any floating storage type.
inline float ToF32(float v) { return v; }
inline float ToF32(BFloat16 v) { return BF16ToFloat(v); }
inline float ToF32(Half v) { return HalfToFloat(v); }
template <typename T>
inline T FromF32(float v);
template <>
inline float FromF32<float>(float v) { return v; }
template <>
inline BFloat16 FromF32<BFloat16>(float v) { return FloatToBF16(v); }
template <>
inline Half FromF32<Half>(float v) { return FloatToHalf(v); }

template <typename T>
struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::kF32; };
template <> struct DTypeOf<BFloat16> { static constexpr DType value = DType::kBF16; };
template <> struct DTypeOf<Half> { static constexpr DType value = DType::kF16; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::kI32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::kI64; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::kU8; };

}  // namespace zt
