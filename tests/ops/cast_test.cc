// Cast family: float <-> float conversions bit-exact against core/dtype.h (ties, subnormals,
// overflow, Inf, NaN), integer -> float against a correct rounding computed here in double,
// same-dtype copies, rejected targets, cost, and the backward rule (finite differences for
// f32 -> f32, exact structure across dtypes, integer inputs non-differentiable).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "ir/autodiff.h"
#include "ir/ops/cast.h"
#include "ir/ops/elementwise.h"
#include "kernels/cpu/cast.h"
#include "support/gradcheck.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::GradCheck;
using testing::GraphRunner;
using testing::RandomUniform;

// Hand-picked f32 values around the rounding boundaries of bf16 and f16.
std::vector<float> SpecialValues() {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> v = {0.0f, -0.0f, 1.0f, -1.0f, 0.1f, -2.5f, 3.14159265f, 65504.0f, 65519.0f, 65520.0f,
                          70000.0f, -1e6f, 1e-8f, 6e-8f, 3e-8f, 5.9604645e-08f, 2.98e-8f, 1e-40f, -1e-45f,
                          3.0e38f, 3.4e38f, inf, -inf, std::numeric_limits<float>::quiet_NaN()};
  // Exact ties for bf16 (half of 2^-7 above 1) and f16 (half of 2^-10), both parities.
  v.push_back(BitsToFloat(0x3f808000u));  // 1 + 2^-8: tie, rounds to even (down)
  v.push_back(BitsToFloat(0x3f818000u));  // 1 + 3*2^-8: tie, rounds up
  v.push_back(BitsToFloat(0x3f801000u));  // 1 + 2^-11: f16 tie, down
  v.push_back(BitsToFloat(0x3f803000u));  // 1 + 3*2^-11: f16 tie, up
  v.push_back(BitsToFloat(0x3f808001u));  // just above a bf16 tie
  v.push_back(BitsToFloat(0x7f7fffffu));  // f32 max: bf16 overflows to Inf
  v.push_back(BitsToFloat(0xffc12345u));  // NaN with payload
  for (float r : RandomUniform(200, 3, -100.0f, 100.0f)) v.push_back(r);
  for (float r : RandomUniform(100, 4, -1e-4f, 1e-4f)) v.push_back(r);  // f16 subnormal range
  return v;
}

std::vector<float> RunCast(DType from, DType to, const std::vector<float>& x) {
  auto g = std::make_unique<ir::Graph>("cast");
  ir::Builder b(g.get());
  auto* in = b.Input("x", from, Shape{static_cast<int64_t>(x.size())});
  g->outputs() = {b.Emit1("cast", {in}, {{"dtype", to}}, "out")};
  GraphRunner r(std::move(g));
  r.Set("x", x);
  r.Run();
  EXPECT_EQ(r.value("out")->dtype, to);
  return r.Get("out");
}

// What a value of storage type `t` holds for f32 v (core/dtype.h), as f32 (exact).
float Stored(DType t, float v) {
  switch (t) {
    case DType::kBF16: return BF16ToFloat(FloatToBF16(v));
    case DType::kF16: return HalfToFloat(FloatToHalf(v));
    default: return v;
  }
}

void ExpectSameBits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << " element " << i;
      continue;
    }
    EXPECT_EQ(FloatBits(got[i]), FloatBits(want[i])) << what << " element " << i << ": " << got[i] << " vs " << want[i];
  }
}

// Every float -> float pair, bit-exact (tolerance 0): the reference converts the stored source
// value exactly to f32, then rounds it with core/dtype.h.
TEST(Cast, FloatToFloatBitExact) {
  const DType kFloats[] = {DType::kF32, DType::kBF16, DType::kF16};
  for (DType from : kFloats) {
    for (DType to : kFloats) {
      std::vector<float> x;
      for (float v : SpecialValues()) x.push_back(Stored(from, v));
      std::vector<float> want;
      for (float v : x) want.push_back(Stored(to, v));
      ExpectSameBits(RunCast(from, to, x), want, std::string(DTypeName(from)) + "->" + DTypeName(to));
    }
  }
}

TEST(Cast, RoundsTiesToEven) {
  std::vector<float> x = {BitsToFloat(0x3f808000u), BitsToFloat(0x3f818000u), BitsToFloat(0x3f801000u),
                          BitsToFloat(0x3f803000u)};
  auto bf = RunCast(DType::kF32, DType::kBF16, x);
  EXPECT_EQ(bf[0], 1.0f);
  EXPECT_EQ(bf[1], 1.0f + 2.0f / 128);
  auto h = RunCast(DType::kF32, DType::kF16, x);
  EXPECT_EQ(h[2], 1.0f);
  EXPECT_EQ(h[3], 1.0f + 2.0f / 1024);
  auto big = RunCast(DType::kF32, DType::kF16, {65519.0f, 65520.0f});
  EXPECT_EQ(big[0], 65504.0f);
  EXPECT_TRUE(std::isinf(big[1]));
}

// Correct rounding of an integer (|v| < 2^53, so exact in double) to a format with `bits`
// significant bits and largest finite value `max_finite`, ties to even: the reference.
double RoundIntTo(int64_t v, int bits, double max_finite) {
  if (v == 0) return 0.0;
  double d = static_cast<double>(v);
  int e = std::ilogb(d);
  double ulp = std::ldexp(1.0, std::max(e - (bits - 1), 0));
  double q = d / ulp;  // exact: a power-of-two scaling
  double fl = std::floor(q), rem = q - fl;
  double r = rem > 0.5 || (rem == 0.5 && std::fmod(fl, 2.0) != 0.0) ? fl + 1 : fl;
  double out = r * ulp;
  if (std::fabs(out) > max_finite) return std::copysign(std::numeric_limits<double>::infinity(), d);
  return out;
}

std::vector<int64_t> IntValues() {
  std::vector<int64_t> v = {0, 1, -1, 7, 255, 256, 257, 258, 259, -257, 2047, 2048, 2049, 2051, 65504, 65519, 65520,
                            100000, (1 << 24) + 1, (1 << 24) + 3, -(1 << 24) - 1,
                            // 2^30 + 2^22 + 1: just above a bf16 tie; rounding via a nearest f32 would
                            // land on the tie and round down (double rounding). Correct: up.
                            (int64_t{1} << 30) + (int64_t{1} << 22) + 1, (int64_t{1} << 30) + (int64_t{1} << 22),
                            (int64_t{1} << 30) + (int64_t{3} << 22), std::numeric_limits<int32_t>::max(),
                            std::numeric_limits<int32_t>::min()};
  for (int64_t r : testing::RandomInts(60, 9, -3000000, 3000000)) v.push_back(r);
  return v;
}

std::vector<float> RunIntCast(DType from, DType to, const std::vector<int64_t>& x) {
  auto g = std::make_unique<ir::Graph>("cast");
  ir::Builder b(g.get());
  auto* in = b.Input("x", from, Shape{static_cast<int64_t>(x.size())});
  g->outputs() = {ir::ops::Cast(b, in, to, "out")};
  GraphRunner r(std::move(g));
  r.SetInts("x", x);
  r.Run();
  return r.Get("out");
}

TEST(Cast, IntegerToFloatIsCorrectlyRounded) {
  std::vector<int64_t> x = IntValues();
  struct Target {
    DType t;
    int bits;
    double max;
  };
  for (Target tg : {Target{DType::kF32, 24, 3.4028234663852886e38}, Target{DType::kBF16, 8, 3.3895313892515355e38},
                    Target{DType::kF16, 11, 65504.0}}) {
    auto out = RunIntCast(DType::kI32, tg.t, x);
    for (size_t i = 0; i < x.size(); ++i)
      EXPECT_EQ(static_cast<double>(out[i]), RoundIntTo(x[i], tg.bits, tg.max)) << "i32 " << x[i] << " -> " << DTypeName(tg.t);
  }
  // i64 beyond 32 bits (below 2^53 so the double reference is exact), and u8.
  std::vector<int64_t> wide = {(int64_t{1} << 40) + (int64_t{1} << 32) + 1, (int64_t{1} << 40) + (int64_t{1} << 32),
                               -(int64_t{1} << 52) - (int64_t{1} << 44) - 1, (int64_t{1} << 52) + (int64_t{1} << 29) + 7};
  for (Target tg : {Target{DType::kF32, 24, 3.4028234663852886e38}, Target{DType::kBF16, 8, 3.3895313892515355e38}}) {
    auto out = RunIntCast(DType::kI64, tg.t, wide);
    for (size_t i = 0; i < wide.size(); ++i)
      EXPECT_EQ(static_cast<double>(out[i]), RoundIntTo(wide[i], tg.bits, tg.max)) << "i64 " << wide[i];
  }
  std::vector<int64_t> bytes = {0, 1, 127, 128, 254, 255};
  auto out = RunIntCast(DType::kU8, DType::kBF16, bytes);
  for (size_t i = 0; i < bytes.size(); ++i) EXPECT_EQ(static_cast<double>(out[i]), RoundIntTo(bytes[i], 8, 1e38));
  // The launcher's helper, directly, including the extremes of i64.
  EXPECT_EQ(FloatToBF16(IntToF32RoundOdd(std::numeric_limits<int64_t>::min())).bits, FloatToBF16(-9.2233720e18f).bits);
  EXPECT_EQ(BF16ToFloat(FloatToBF16(IntToF32RoundOdd((int64_t{1} << 62) + (int64_t{1} << 54) + 1))),
            std::ldexp(1.0f, 62) + std::ldexp(1.0f, 55));
}

TEST(Cast, SameDTypeIsACopy) {
  auto f = RunCast(DType::kBF16, DType::kBF16, testing::RoundTo(DType::kBF16, {1.5f, -0.375f, 1e30f}));
  EXPECT_EQ(f, testing::RoundTo(DType::kBF16, {1.5f, -0.375f, 1e30f}));
  auto g = std::make_unique<ir::Graph>("copy");
  ir::Builder b(g.get());
  auto* x = b.Input("x", DType::kI64, Shape{3});
  EXPECT_EQ(ir::ops::Cast(b, x, DType::kI64), x);  // the helper adds no node
  g->outputs() = {b.Emit1("cast", {x}, {{"dtype", DType::kI64}}, "out")};
  GraphRunner r(std::move(g));
  r.SetInts("x", {-5, 0, 1 << 20});
  r.Run();
  EXPECT_EQ(r.Get("out"), (std::vector<float>{-5, 0, 1 << 20}));
}

TEST(Cast, RejectsUnsupportedTargets) {
  ir::Graph g("bad");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kF32, Shape{2, 3});
  auto* ids = b.Input("ids", DType::kI32, Shape{4});
  for (DType to : {DType::kI32, DType::kI64, DType::kU8}) {
    auto r = b.TryEmit("cast", {x}, {{"dtype", to}});
    ASSERT_FALSE(r.ok());
    const std::string& m = r.status().message();
    EXPECT_NE(m.find("'dtype'"), std::string::npos) << m;
    EXPECT_NE(m.find("float -> integer"), std::string::npos) << m;
    EXPECT_NE(m.find("input 0 (x)"), std::string::npos) << m;
  }
  EXPECT_FALSE(b.TryEmit("cast", {ids}, {{"dtype", DType::kI64}}).ok());
  EXPECT_FALSE(b.TryEmit("cast", {x}, {}).ok());  // dtype is required
  EXPECT_TRUE(b.TryEmit("cast", {ids}, {{"dtype", DType::kF16}}).ok());
}

TEST(Cast, Cost) {
  ir::Graph g("cost");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kF32, Shape{2, 3, 4});
  ir::Cost c = ir::NodeCost(*ir::ops::Cast(b, x, DType::kBF16)->producer);
  EXPECT_DOUBLE_EQ(c.flops, 24);
  EXPECT_DOUBLE_EQ(c.bytes_read, 96);
  EXPECT_DOUBLE_EQ(c.bytes_written, 48);
}

class CastGrad : public ::testing::TestWithParam<std::vector<int64_t>> {};

TEST_P(CastGrad, F32ToF32FiniteDifferences) {
  GradCheck({{"x", Shape(GetParam())}}, [](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return std::vector<ir::Value*>{b.Emit1("cast", {v[0]}, {{"dtype", DType::kF32}})};
  });
}

// f32 -> bf16 -> f32: finite differences cannot see through bf16 rounding, so check the rule
// exactly: d loss/dx = cast(cast(r, bf16), f32) = r rounded to bf16.
TEST_P(CastGrad, AcrossDTypesIsCastBack) {
  Shape s(GetParam());
  auto g = std::make_unique<ir::Graph>("cg");
  ir::Builder b(g.get());
  auto* x = b.Param("x", DType::kF32, s);
  auto* r = b.Input("r", DType::kF32, s);
  auto* y = ir::ops::Cast(b, ir::ops::Cast(b, x, DType::kBF16, "xb"), DType::kF32, "y");
  auto* loss = ir::ops::ReduceSumTo(b, ir::ops::Mul(b, y, r), Shape{}, "loss");
  g->outputs() = {loss};
  ASSERT_TRUE(ir::AppendBackward(*g, loss, {x}).ok());
  std::string dx = g->GradOf(x)->name;
  GraphRunner run(std::move(g));
  auto rv = RandomUniform(s.numel(), 77);
  run.Set("x", RandomUniform(s.numel(), 78));
  run.Set("r", rv);
  run.Run();
  EXPECT_EQ(run.Get(dx), testing::RoundTo(DType::kBF16, rv));
}

INSTANTIATE_TEST_SUITE_P(Shapes, CastGrad,
                         ::testing::Values(std::vector<int64_t>{}, std::vector<int64_t>{1}, std::vector<int64_t>{2, 3, 5},
                                           std::vector<int64_t>{1, 7, 1}));

TEST(Cast, IntegerInputGetsNoGradient) {
  // An integer param reaches the loss only through cast: its backward rule gives no gradient, so
  // autodiff fills zeros; and an integer data input next to a float param works as usual.
  auto g = std::make_unique<ir::Graph>("ig");
  ir::Builder b(g.get());
  auto* ids = b.Param("ids", DType::kI32, Shape{4});
  auto* loss = ir::ops::ReduceSumTo(b, ir::ops::Cast(b, ids, DType::kF32), Shape{});
  ASSERT_TRUE(ir::AppendBackward(*g, loss, {ids}).ok());
  EXPECT_EQ(g->GradOf(ids)->producer->op->name, "fill");

  GradCheck({{"ids", Shape{2, 3}, DType::kI32, false, -1, 1, 50}, {"w", Shape{2, 3}}},
            [](ir::Builder& bb, const std::vector<ir::Value*>& v) {
              return std::vector<ir::Value*>{ir::ops::Mul(bb, v[1], ir::ops::Cast(bb, v[0], DType::kF32))};
            });
}

}  // namespace
}  // namespace zt
