// Rope family: forward against the formula evaluated in double (and against HF's f32 angle
// arithmetic at large positions), inverse(rope(x)) == x, bf16/f16 storage, finite-difference
// backward, shape-rule rejections and cost.
#include <gtest/gtest.h>

#include <cmath>

#include "ir/ops/rope.h"
#include "support/gradcheck.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::GradCheck;
using testing::GradInput;
using testing::GraphRunner;
using testing::RandomUniform;

// Angle function: a(t, i) for position t and pair i of a head of size D.
using AngleFn = double (*)(int64_t t, int64_t i, int64_t D, double theta);

double AngleDouble(int64_t t, int64_t i, int64_t D, double theta) {
  return static_cast<double>(t) * std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(D));
}

// HF LlamaRotaryEmbedding: inv_freq = 1 / theta ** (arange(0, D, 2).float() / D) and
// freqs = t * inv_freq, all in f32.
double AngleHfF32(int64_t t, int64_t i, int64_t D, double theta) {
  float inv = 1.0f / std::pow(static_cast<float>(theta), static_cast<float>(2 * i) / static_cast<float>(D));
  return static_cast<double>(static_cast<float>(t) * inv);
}

// y[i] = x[i] cos a - x[i + D/2] sin a; y[i + D/2] = x[i + D/2] cos a + x[i] sin a (a negated if inverse).
std::vector<double> Reference(const Shape& s, const std::vector<float>& x, double theta, bool inverse, AngleFn angle) {
  const int64_t B = s[0], T = s[1], H = s[2], D = s[3], half = D / 2;
  std::vector<double> y(x.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t base = ((b * T + t) * H + h) * D;
        for (int64_t i = 0; i < half; ++i) {
          double a = angle(t, i, D, theta) * (inverse ? -1.0 : 1.0);
          double x1 = x[base + i], x2 = x[base + i + half];
          y[base + i] = x1 * std::cos(a) - x2 * std::sin(a);
          y[base + i + half] = x2 * std::cos(a) + x1 * std::sin(a);
        }
      }
  return y;
}

struct RopeCase {
  std::vector<int64_t> shape;
  double theta;
};

void PrintTo(const RopeCase& c, std::ostream* os) { *os << Shape(c.shape) << " theta " << c.theta; }

const std::vector<RopeCase> kCases = {
    {{1, 1, 1, 2}, 10000.0},   {{2, 5, 3, 8}, 10000.0}, {{1, 7, 2, 6}, 500000.0},
    {{3, 1, 4, 4}, 10000.0},   {{1, 9, 1, 10}, 100.0},  {{2, 3, 5, 2}, 10000.0},
};

void CheckForward(const RopeCase& c, DType dtype, bool inverse, double tol) {
  Shape s(c.shape);
  auto g = std::make_unique<ir::Graph>("rope");
  ir::Builder b(g.get());
  auto* x = b.Input("x", dtype, s);
  g->outputs() = {inverse ? ir::ops::RopeInverse(b, x, c.theta, "y") : ir::ops::Rope(b, x, c.theta, "y")};
  GraphRunner r(std::move(g));
  auto xv = testing::RoundTo(dtype, RandomUniform(s.numel(), 21));
  r.Set("x", xv);
  r.Run();
  auto y = r.Get("y");
  auto ref = Reference(s, xv, c.theta, inverse, AngleDouble);
  ASSERT_EQ(y.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(y[i], ref[i], tol * (1 + std::fabs(ref[i]))) << i;
}

class RopeCaseTest : public ::testing::TestWithParam<RopeCase> {};

// f32: the kernel's angle is f32-rounded like HF's (error ~ t * 1e-7 rad for the small T here).
TEST_P(RopeCaseTest, ForwardF32) { CheckForward(GetParam(), DType::kF32, false, 1e-5); }
TEST_P(RopeCaseTest, InverseForwardF32) { CheckForward(GetParam(), DType::kF32, true, 1e-5); }
// bf16 (8 mantissa bits) and f16 (11): one rounding of the result.
TEST_P(RopeCaseTest, ForwardBf16) { CheckForward(GetParam(), DType::kBF16, false, 8e-3); }
TEST_P(RopeCaseTest, ForwardF16) { CheckForward(GetParam(), DType::kF16, false, 1e-3); }

TEST_P(RopeCaseTest, Backward) {
  const RopeCase c = GetParam();
  GradCheck({{"x", Shape(c.shape)}}, [c](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return std::vector<ir::Value*>{ir::ops::Rope(b, v[0], c.theta)};
  });
}

TEST_P(RopeCaseTest, BackwardOfInverse) {
  const RopeCase c = GetParam();
  GradCheck({{"x", Shape(c.shape)}}, [c](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return std::vector<ir::Value*>{ir::ops::RopeInverse(b, v[0], c.theta)};
  });
}

INSTANTIATE_TEST_SUITE_P(All, RopeCaseTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<RopeCase>& i) { return "case" + std::to_string(i.index); });

TEST(Rope, InverseUndoesForward) {
  Shape s{2, 13, 3, 8};
  auto g = std::make_unique<ir::Graph>("rope");
  ir::Builder b(g.get());
  auto* x = b.Input("x", DType::kF32, s);
  g->outputs() = {ir::ops::RopeInverse(b, ir::ops::Rope(b, x, 10000.0, "y"), 10000.0, "back")};
  GraphRunner r(std::move(g));
  auto xv = RandomUniform(s.numel(), 5);
  r.Set("x", xv);
  r.Run();
  auto back = r.Get("back");
  for (size_t i = 0; i < xv.size(); ++i) EXPECT_NEAR(back[i], xv[i], 1e-6) << i;
}

// At large positions the f32 angle of HF differs from the exact one by ~1e-5 rad; the kernel
// follows HF (a whole-model comparison with PyTorch depends on it).
TEST(Rope, MatchesHfF32AnglesAtLargePositions) {
  Shape s{1, 4100, 1, 8};
  const double theta = 10000.0;
  auto g = std::make_unique<ir::Graph>("rope");
  ir::Builder b(g.get());
  auto* x = b.Input("x", DType::kF32, s);
  g->outputs() = {ir::ops::Rope(b, x, theta, "y")};
  GraphRunner r(std::move(g));
  auto xv = RandomUniform(s.numel(), 9);
  r.Set("x", xv);
  r.Run();
  auto y = r.Get("y");
  auto ref = Reference(s, xv, theta, false, AngleHfF32);
  double max_err = 0;
  for (size_t i = 0; i < ref.size(); ++i) max_err = std::max(max_err, std::fabs(y[i] - ref[i]));
  EXPECT_LT(max_err, 2e-6);  // the exact (f64) angle would be off by ~2e-5 here
}

TEST(Rope, RejectsBadInputs) {
  ir::Graph g("bad");
  ir::Builder b(&g);
  auto* odd = b.Input("odd", DType::kF32, Shape{1, 2, 3, 5});
  auto r1 = b.TryEmit("rope", {odd});
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.status().message().find("(x)"), std::string::npos) << r1.status().message();
  EXPECT_NE(r1.status().message().find("even"), std::string::npos) << r1.status().message();
  auto* rank3 = b.Input("rank3", DType::kF32, Shape{2, 3, 4});
  auto r2 = b.TryEmit("rope", {rank3});
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("(x)"), std::string::npos) << r2.status().message();
  auto* ints = b.Input("ints", DType::kI32, Shape{1, 2, 3, 4});
  auto r3 = b.TryEmit("rope", {ints});
  ASSERT_FALSE(r3.ok());
  EXPECT_NE(r3.status().message().find("(x)"), std::string::npos) << r3.status().message();
  auto* ok = b.Input("ok", DType::kF32, Shape{1, 2, 3, 4});
  EXPECT_FALSE(b.TryEmit("rope", {ok}, {{"theta", 0.0}}).ok());
  EXPECT_FALSE(b.TryEmit("rope", {ok}, {{"theta", -5.0}}).ok());
  EXPECT_TRUE(b.TryEmit("rope", {ok}).ok());
}

TEST(Rope, CostAndWorkspace) {
  ir::Graph g("cost");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kBF16, Shape{2, 5, 3, 8});
  auto* y = ir::ops::Rope(b, x, 10000.0);
  EXPECT_EQ(y->dtype, DType::kBF16);
  EXPECT_EQ(y->shape, x->shape);
  ir::Cost c = ir::NodeCost(*y->producer);
  EXPECT_DOUBLE_EQ(c.flops, 6.0 * 240);
  EXPECT_DOUBLE_EQ(c.bytes_read, 240 * 2.0);
  EXPECT_DOUBLE_EQ(c.bytes_written, 240 * 2.0);
  EXPECT_GE(ir::NodeWorkspace(*y->producer), 2u * 5 * 4 * 4);
}

}  // namespace
}  // namespace zt
