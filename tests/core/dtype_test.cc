// DType conversions: exhaustive over all 65,536 bf16 and f16 bit patterns, and round-to-nearest-
// even from f32 checked against an independent reference computed in double.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "core/dtype.h"

namespace zt {
namespace {

bool IsNanBits16(uint16_t h, int exp_bits) {
  int man_bits = 15 - exp_bits;
  uint16_t exp_mask = static_cast<uint16_t>(((1u << exp_bits) - 1) << man_bits);
  return (h & exp_mask) == exp_mask && (h & ((1u << man_bits) - 1)) != 0;
}

// Independent reference: the value of a 16-bit pattern computed from its fields in double.
double Decode16(uint16_t h, int exp_bits) {
  int man_bits = 15 - exp_bits;
  int bias = (1 << (exp_bits - 1)) - 1;
  int sign = h >> 15;
  int e = (h >> man_bits) & ((1 << exp_bits) - 1);
  int m = h & ((1 << man_bits) - 1);
  double v;
  if (e == 0) v = std::ldexp(m, 1 - bias - man_bits);
  else if (e == (1 << exp_bits) - 1) v = m ? std::numeric_limits<double>::quiet_NaN() : INFINITY;
  else v = std::ldexp(m + (1 << man_bits), e - bias - man_bits);
  return sign ? -v : v;
}

TEST(DType, Bf16AllPatternsRoundTrip) {
  for (uint32_t b = 0; b < 65536; ++b) {
    BFloat16 h{static_cast<uint16_t>(b)};
    float f = BF16ToFloat(h);
    double ref = Decode16(h.bits, 8);
    if (IsNanBits16(h.bits, 8)) {
      ASSERT_TRUE(std::isnan(f)) << b;
      BFloat16 back = FloatToBF16(f);
      ASSERT_TRUE(IsNanBits16(back.bits, 8)) << "NaN " << b << " lost";
      ASSERT_EQ(back.bits & 0x8000, h.bits & 0x8000) << "NaN sign lost";
      continue;
    }
    ASSERT_EQ(static_cast<double>(f), ref) << b;
    ASSERT_EQ(FloatToBF16(f).bits, h.bits) << b;
  }
}

TEST(DType, F16AllPatternsRoundTrip) {
  for (uint32_t b = 0; b < 65536; ++b) {
    Half h{static_cast<uint16_t>(b)};
    float f = HalfToFloat(h);
    double ref = Decode16(h.bits, 5);
    if (IsNanBits16(h.bits, 5)) {
      ASSERT_TRUE(std::isnan(f)) << b;
      Half back = FloatToHalf(f);
      ASSERT_TRUE(IsNanBits16(back.bits, 5)) << "NaN " << b << " lost";
      ASSERT_EQ(back.bits & 0x8000, h.bits & 0x8000) << "NaN sign lost";
      continue;
    }
    ASSERT_EQ(static_cast<double>(f), ref) << b;
    ASSERT_EQ(FloatToHalf(f).bits, h.bits) << b;
  }
}

// Reference rounding: among all finite 16-bit patterns (and infinity), the nearest to x; ties go
// to the even mantissa; beyond the largest finite value by half an ulp or more -> infinity.
template <int kExpBits>
uint16_t ReferenceRound(float x) {
  static std::vector<std::pair<double, uint16_t>> table = [] {
    std::vector<std::pair<double, uint16_t>> t;
    for (uint32_t b = 0; b < 0x8000; ++b) {
      if (IsNanBits16(static_cast<uint16_t>(b), kExpBits)) continue;
      t.push_back({Decode16(static_cast<uint16_t>(b), kExpBits), static_cast<uint16_t>(b)});
    }
    return t;  // ascending by value because positive patterns are ordered
  }();
  uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  double a = std::fabs(static_cast<double>(x));
  auto it = std::lower_bound(table.begin(), table.end(), std::make_pair(a, uint16_t{0}));
  if (it == table.end()) return sign | table.back().second;
  if (it->first == a || it == table.begin()) return sign | it->second;
  auto lo = it - 1;
  double dlo = a - lo->first, dhi = it->first - a;
  if (std::isinf(it->first)) {
    // Halfway point to the next (unrepresentable) step above the largest finite value.
    double ulp = lo->first - (lo - 1)->first;
    return sign | (a >= lo->first + ulp / 2 ? it->second : lo->second);
  }
  if (dlo < dhi) return sign | lo->second;
  if (dhi < dlo) return sign | it->second;
  return sign | ((lo->second & 1) ? it->second : lo->second);
}

TEST(DType, RoundToNearestEvenAtEveryMidpoint) {
  // Exact midpoints between consecutive finite values (and a hair either side) for both formats.
  for (uint32_t b = 0; b + 1 < 0x7c00; ++b) {  // f16 finite positive
    double lo = Decode16(static_cast<uint16_t>(b), 5), hi = Decode16(static_cast<uint16_t>(b + 1), 5);
    float mid = static_cast<float>((lo + hi) / 2);  // exact in f32
    for (float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY), -mid}) {
      ASSERT_EQ(FloatToHalf(x).bits, ReferenceRound<5>(x)) << "x=" << x;
    }
  }
  for (uint32_t b = 0; b + 1 < 0x7f80; b += 7) {  // bf16 finite positive (sampled)
    double lo = Decode16(static_cast<uint16_t>(b), 8), hi = Decode16(static_cast<uint16_t>(b + 1), 8);
    float mid = static_cast<float>((lo + hi) / 2);
    for (float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY), -mid}) {
      ASSERT_EQ(FloatToBF16(x).bits, ReferenceRound<8>(x)) << "x=" << x;
    }
  }
}

TEST(DType, RandomFloatsMatchReference) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) {
    float x = BitsToFloat(rng());
    if (std::isnan(x)) continue;
    ASSERT_EQ(FloatToHalf(x).bits, ReferenceRound<5>(x)) << "x=" << x;
    ASSERT_EQ(FloatToBF16(x).bits, ReferenceRound<8>(x)) << "x=" << x;
  }
}

TEST(DType, OverflowAndSpecials) {
  EXPECT_EQ(FloatToHalf(65504.0f).bits, 0x7bff);
  EXPECT_EQ(FloatToHalf(65519.99f).bits, 0x7bff);
  EXPECT_EQ(FloatToHalf(65520.0f).bits, 0x7c00);  // ties to even rounds up to infinity
  EXPECT_EQ(FloatToHalf(INFINITY).bits, 0x7c00);
  EXPECT_EQ(FloatToHalf(-INFINITY).bits, 0xfc00);
  EXPECT_EQ(FloatToBF16(INFINITY).bits, 0x7f80);
  EXPECT_EQ(FloatToBF16(3.4028235e38f).bits, 0x7f80);  // rounds past the largest bf16
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(std::nanf("")))));
  EXPECT_TRUE(std::isnan(BF16ToFloat(FloatToBF16(std::nanf("")))));
  EXPECT_EQ(FloatToHalf(5.9604645e-08f).bits, 0x0001);   // least subnormal
  EXPECT_EQ(FloatToHalf(2.9802322e-08f).bits, 0x0000);   // half of it: tie to even (0)
  EXPECT_EQ(FloatToHalf(2.9802326e-08f).bits, 0x0001);   // just above half
}

TEST(DType, NamesAndSizes) {
  for (int i = 0; i < kNumDTypes; ++i) {
    DType t = static_cast<DType>(i);
    EXPECT_EQ(ParseDType(DTypeName(t)), t);
  }
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kI64), 8u);
  EXPECT_FALSE(ParseDType("f64").has_value());
}

}  // namespace
}  // namespace zt
