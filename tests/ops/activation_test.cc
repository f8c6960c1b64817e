// Activation family: gelu (tanh form), silu, swiglu and their backward ops against f64
// references (f32, bf16, f16 storage), finite results for large-magnitude inputs, gradients by
// finite differences, shape rules and cost.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "ir/ops/activation.h"
#include "support/gradcheck.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::Arg;
using testing::GradCheck;
using testing::GradInput;
using testing::GraphRunner;
using testing::RandomUniform;
using testing::RoundTo;


// f64 references, written from the definitions (derivatives by hand).
double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double GeluRef(double x) {
  const double k = std::sqrt(2.0 / M_PI);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}
double GeluGradRef(double x) {
  const double k = std::sqrt(2.0 / M_PI);
  double u = k * (x + 0.044715 * x * x * x);
  double t = std::tanh(u);
  double du = k * (1.0 + 3 * 0.044715 * x * x);
  double sech2 = 1.0 / (std::cosh(u) * std::cosh(u));  // 0 once cosh overflows
  return 0.5 * (1.0 + t) + 0.5 * x * sech2 * du;
}
double SiluRef(double x) { return x * Sigmoid(x); }
double SiluGradRef(double x) { return Sigmoid(x) + x * Sigmoid(x) * Sigmoid(-x); }

void ExpectNear(const std::vector<float>& got, const std::vector<double>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!(std::fabs(got[i] - want[i]) <= tol * (1 + std::fabs(want[i]))) && bad++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i];
  }
  EXPECT_EQ(bad, 0) << bad << " elements of " << what << " out of tolerance " << tol;
}

// Runs every forward and backward op of the family on x (= gate), u (= up) and dy; checks the
// results against the f64 references with tolerance tol (relative, see ExpectNear).
void CheckAll(const Shape& s, DType dtype, const std::vector<float>& xv, const std::vector<float>& uv,
              const std::vector<float>& dyv, double tol) {
  auto g = std::make_unique<ir::Graph>("act");
  ir::Builder b(g.get());
  auto* x = b.Input("x", dtype, s);
  auto* u = b.Input("u", dtype, s);
  auto* dy = b.Input("dy", dtype, s);
  using namespace ir::ops;
  auto sw = b.Emit("swiglu_bwd", {dy, x, u}, {}, "dsw");
  g->outputs() = {Gelu(b, x, "gelu"), Silu(b, x, "silu"), SwiGlu(b, x, u, "swiglu"),
                  b.Emit1("gelu_bwd", {dy, x}, {}, "dgelu"), b.Emit1("silu_bwd", {dy, x}, {}, "dsilu"), sw[0], sw[1]};
  GraphRunner r(std::move(g));
  r.Set("x", xv);
  r.Set("u", uv);
  r.Set("dy", dyv);
  r.Run();
  size_t n = xv.size();
  std::vector<double> gelu(n), silu(n), swiglu(n), dgelu(n), dsilu(n), dgate(n), dup(n);
  for (size_t i = 0; i < n; ++i) {
    double x0 = xv[i], u0 = uv[i], d0 = dyv[i];
    gelu[i] = GeluRef(x0);
    silu[i] = SiluRef(x0);
    swiglu[i] = SiluRef(x0) * u0;
    dgelu[i] = d0 * GeluGradRef(x0);
    dsilu[i] = d0 * SiluGradRef(x0);
    dgate[i] = d0 * u0 * SiluGradRef(x0);
    dup[i] = d0 * SiluRef(x0);
  }
  const char* names[] = {"gelu", "silu", "swiglu", "dgelu", "dsilu", "dsw", "dsw.dup"};
  const std::vector<double>* refs[] = {&gelu, &silu, &swiglu, &dgelu, &dsilu, &dgate, &dup};
  for (int k = 0; k < 7; ++k) {
    std::vector<float> got = r.Get(names[k]);
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_TRUE(std::isfinite(got[i])) << names[k] << "[" << i << "] = " << got[i] << " for x = " << xv[i];
    ExpectNear(got, *refs[k], tol, names[k]);
  }
}

const std::vector<std::vector<int64_t>> kShapes = {{1}, {7}, {3, 5}, {2, 3, 13}, {1, 1, 1}, {4, 1000}};

class ActivationShapes : public ::testing::TestWithParam<std::vector<int64_t>> {};

// Tolerances (relative, |got - want| <= tol (1 + |want|)): f32 2e-6 (a few f32 roundings and
// f32 tanh/exp); bf16 8e-3 and f16 1e-3 (one rounding to 2^-9 resp. 2^-12 relative of the
// result, the inputs being exactly representable).
void CheckShape(const Shape& s, DType dtype, double tol) {
  int64_t n = s.numel();
  CheckAll(s, dtype, RoundTo(dtype, RandomUniform(n, 1, -6, 6)), RoundTo(dtype, RandomUniform(n, 2, -2, 2)),
           RoundTo(dtype, RandomUniform(n, 3)), tol);
}

TEST_P(ActivationShapes, F32) { CheckShape(Shape(GetParam()), DType::kF32, 2e-6); }
TEST_P(ActivationShapes, Bf16) { CheckShape(Shape(GetParam()), DType::kBF16, 8e-3); }
TEST_P(ActivationShapes, F16) { CheckShape(Shape(GetParam()), DType::kF16, 1e-3); }

TEST_P(ActivationShapes, GradGeluSilu) {
  Shape s(GetParam());
  GradCheck({Arg("x", s, true, -4, 4)}, [](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return std::vector<ir::Value*>{ir::ops::Gelu(b, v[0]), ir::ops::Silu(b, v[0])};
  });
}

TEST_P(ActivationShapes, GradSwiGlu) {
  Shape s(GetParam());
  GradCheck({Arg("gate", s, true, -4, 4), Arg("up", s, true, -2, 2)},
            [](ir::Builder& b, const std::vector<ir::Value*>& v) {
              return std::vector<ir::Value*>{ir::ops::SwiGlu(b, v[0], v[1])};
            });
}

INSTANTIATE_TEST_SUITE_P(All, ActivationShapes, ::testing::ValuesIn(kShapes),
                         [](const ::testing::TestParamInfo<std::vector<int64_t>>& i) {
                           std::string s = "s";
                           for (int64_t d : i.param) s += "_" + std::to_string(d);
                           return s;
                         });

// Only one of gate, up needs a gradient: the rule passes nullptr for the other.
TEST(Activation, GradSwiGluOneInput) {
  for (int which = 0; which < 2; ++which) {
    GradCheck({Arg("gate", Shape{2, 5}, which == 0, -4, 4), Arg("up", Shape{2, 5}, which == 1)},
              [](ir::Builder& b, const std::vector<ir::Value*>& v) {
                return std::vector<ir::Value*>{ir::ops::SwiGlu(b, v[0], v[1])};
              });
  }
}

// |x| up to 80 in every storage type (80 fits f16), and far beyond in f32: all results finite and
// equal to the references (which saturate: gelu(x) = x or 0, silu(x) = x or 0).
TEST(Activation, LargeMagnitudeIsFinite) {
  std::vector<float> big = {-80, -79.5f, -60, -40, -20, -12, -9, -5, 5, 9, 12, 20, 40, 60, 79.5f, 80};
  std::vector<float> up(big.size(), 1.5f), dy(big.size(), -0.75f);
  Shape s{static_cast<int64_t>(big.size())};
  CheckAll(s, DType::kF32, big, up, dy, 2e-6);
  CheckAll(s, DType::kBF16, RoundTo(DType::kBF16, big), up, dy, 8e-3);
  CheckAll(s, DType::kF16, RoundTo(DType::kF16, big), up, dy, 1e-3);
  std::vector<float> huge = {-3e38f, -1e20f, -1e6f, -1000, -100, 100, 1000, 1e6f, 1e20f, 3e38f};
  std::vector<float> up2(huge.size(), 0.5f), dy2(huge.size(), 0.25f);
  CheckAll(Shape{static_cast<int64_t>(huge.size())}, DType::kF32, huge, up2, dy2, 2e-6);
}

void ExpectRejected(ir::Builder& b, const char* op, std::vector<ir::Value*> in, const char* needle) {
  auto r = b.TryEmit(op, std::move(in));
  ASSERT_FALSE(r.ok()) << op << " accepted; expected an error containing '" << needle << "'";
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
}

TEST(Activation, RejectsBadInputs) {
  ir::Graph g("bad");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kF32, Shape{2, 4});
  auto* x24t = b.Input("x42", DType::kF32, Shape{4, 2});
  auto* xbf = b.Input("xbf", DType::kBF16, Shape{2, 4});
  auto* xi = b.Input("xi", DType::kI32, Shape{2, 4});
  ExpectRejected(b, "gelu", {xi}, "(x)");
  ExpectRejected(b, "silu", {xi}, "must be f32, bf16 or f16");
  ExpectRejected(b, "swiglu", {x, x24t}, "(up)");
  ExpectRejected(b, "swiglu", {x, xbf}, "(up)");
  ExpectRejected(b, "swiglu", {xi, xi}, "(gate)");
  ExpectRejected(b, "gelu_bwd", {x, xbf}, "(x)");
  ExpectRejected(b, "silu_bwd", {x24t, x}, "(x)");
  ExpectRejected(b, "swiglu_bwd", {x, x, x24t}, "(up)");
  ExpectRejected(b, "swiglu_bwd", {xbf, x, x}, "(gate)");
  EXPECT_TRUE(b.TryEmit("swiglu_bwd", {x, x, x}).ok());
}

TEST(Activation, NamesAndCost) {
  ir::Graph g("cost");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kBF16, Shape{2, 3});
  auto* gelu = ir::ops::Gelu(b, x, "act");
  EXPECT_EQ(gelu->dtype, DType::kBF16);
  ir::Cost c = ir::NodeCost(*gelu->producer);
  EXPECT_DOUBLE_EQ(c.flops, 9.0 * 6);
  EXPECT_DOUBLE_EQ(c.bytes_read, 12.0);
  EXPECT_DOUBLE_EQ(c.bytes_written, 12.0);
  EXPECT_DOUBLE_EQ(ir::NodeCost(*ir::ops::Silu(b, x)->producer).flops, 5.0 * 6);
  EXPECT_DOUBLE_EQ(ir::NodeCost(*ir::ops::SwiGlu(b, x, x)->producer).flops, 6.0 * 6);
  auto sw = b.Emit("swiglu_bwd", {x, x, x}, {}, "dg");
  EXPECT_EQ(sw[1]->name, "dg.dup");
  ir::Cost cb = ir::NodeCost(*sw[0]->producer);
  EXPECT_DOUBLE_EQ(cb.flops, 12.0 * 6);
  EXPECT_DOUBLE_EQ(cb.bytes_read, 36.0);
  EXPECT_DOUBLE_EQ(cb.bytes_written, 24.0);
  EXPECT_DOUBLE_EQ(ir::NodeCost(*b.Emit1("gelu_bwd", {x, x})->producer).flops, 17.0 * 6);
  EXPECT_DOUBLE_EQ(ir::NodeCost(*b.Emit1("silu_bwd", {x, x})->producer).flops, 9.0 * 6);
}

}  // namespace
}  // namespace zt
