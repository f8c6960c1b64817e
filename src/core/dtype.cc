// DType names and sizes, and the f16 conversions (bf16 ones are inline in the header).
#include "core/dtype.h"

#include "core/check.h"

namespace zt {

size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kBF16: return 2;
    case DType::kF16: return 2;
    case DType::kI32: return 4;
    case DType::kI64: return 8;
    case DType::kU8: return 1;
  }
  ZT_CHECK(false) << "bad dtype " << static_cast<int>(t);
  return 0;
}

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kBF16: return "bf16";
    case DType::kF16: return "f16";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
    case DType::kU8: return "u8";
  }
  ZT_CHECK(false) << "bad dtype " << static_cast<int>(t);
  return "";
}

std::optional<DType> ParseDType(std::string_view name) {
  for (int i = 0; i < kNumDTypes; ++i) {
    DType t = static_cast<DType>(i);
    if (name == DTypeName(t)) return t;
  }
  return std::nullopt;
}

bool IsFloating(DType t) { return t == DType::kF32 || t == DType::kBF16 || t == DType::kF16; }
bool IsInteger(DType t) { return t == DType::kI32 || t == DType::kI64 || t == DType::kU8; }

namespace {

// Exact f16 -> f32 from the fields: subnormals are renormalised, Inf/NaN keep their payload.
constexpr uint32_t HalfBitsToFloatBits(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0) {
    if (man == 0) return sign;
    int shift = 0;  // normalise: value = man * 2^-24 = 1.m * 2^(e)
    while (!(man & 0x400u)) {
      man <<= 1;
      ++shift;
    }
    return sign | (static_cast<uint32_t>(113 - shift) << 23) | ((man & 0x3ffu) << 13);
  }
  if (exp == 31) return sign | 0x7f800000u | (man << 13);
  return sign | ((exp + 112u) << 23) | (man << 13);
}

constexpr std::array<uint32_t, 65536> MakeHalfTable() {
  std::array<uint32_t, 65536> t{};
  for (uint32_t i = 0; i < 65536; ++i) t[i] = HalfBitsToFloatBits(static_cast<uint16_t>(i));
  return t;
}

}  // namespace

namespace internal {
// Initialized at compile time (constinit): safe to use from any static initializer.
constinit const std::array<uint32_t, 65536> kHalfToFloatBits = MakeHalfTable();
}  // namespace internal

// Rounds `q` (a truncated result) up when the dropped bits `rem` (out of `half*2`) are more than
// half an ulp, or exactly half and q is odd.
static inline uint32_t RoundNearestEven(uint32_t q, uint32_t rem, uint32_t half) {
  if (rem > half || (rem == half && (q & 1u))) return q + 1;
  return q;
}

Half FloatToHalf(float f) {
  uint32_t x = FloatBits(f);
  uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  uint32_t exp = (x >> 23) & 0xffu;
  uint32_t man = x & 0x7fffffu;
  if (exp == 0xff) {
    if (man == 0) return Half{static_cast<uint16_t>(sign | 0x7c00u)};
    // NaN: keep the top payload bits, force the quiet bit so it cannot become Inf.
    return Half{static_cast<uint16_t>(sign | 0x7c00u | 0x200u | (man >> 13))};
  }
  if (exp >= 113) {
    // Normal range of f16 (exponent 1..30) or overflow; a mantissa carry rolls into the
    // exponent and, past the largest finite value, lands exactly on Inf (0x7c00).
    if (exp > 142) return Half{static_cast<uint16_t>(sign | 0x7c00u)};
    uint32_t q = ((exp - 112u) << 10) | (man >> 13);
    q = RoundNearestEven(q, man & 0x1fffu, 0x1000u);
    if (q >= 0x7c00u) q = 0x7c00u;
    return Half{static_cast<uint16_t>(sign | q)};
  }
  if (exp == 0) return Half{sign};  // f32 zero or subnormal: far below half of f16's least step.
  // f16 subnormal: value = (man|implicit) * 2^(exp-150); in units of 2^-24 that is
  // (man|implicit) >> (126 - exp).
  uint32_t full = man | 0x800000u;
  uint32_t shift = 126u - exp;  // >= 14 here
  if (shift > 24) return Half{sign};  // below half of the least step: rounds to zero
  uint32_t q = full >> shift;
  uint32_t rem = full & ((1u << shift) - 1u);
  q = RoundNearestEven(q, rem, 1u << (shift - 1));
  return Half{static_cast<uint16_t>(sign | q)};
}

}  // namespace zt
