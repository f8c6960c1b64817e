// Matmul: forward against a naive triple loop for every transpose combination, batched and
// shared operands, bias, and bf16/f16 storage; backward against finite differences.
#include <gtest/gtest.h>

#include <cmath>

#include "ir/ops/matmul.h"
#include "support/gradcheck.h"
#include "support/graph_runner.h"
#include "support/device_compare.h"
#include "backend/cpu/cpu_backend.h"

namespace zt {
namespace {

using testing::GradCheck;
using testing::GraphRunner;
using testing::RandomUniform;

struct Case {
  std::vector<int64_t> a, b;
  bool ta, tb, bias;
};

// Naive reference: out[batch][i][j] = sum_k opA[i][k] * opB[k][j] (+ bias[j]), in double.
std::vector<double> Naive(const Case& c, const std::vector<float>& a, const std::vector<float>& b,
                          const std::vector<float>& bias, int64_t* batch_out, int64_t* m_out, int64_t* n_out) {
  Shape as(c.a), bs(c.b);
  int64_t m = c.ta ? as[-1] : as[-2], k = c.ta ? as[-2] : as[-1], n = c.tb ? bs[-2] : bs[-1];
  int64_t ba = as.Product(0, as.rank() - 2), bb = bs.Product(0, bs.rank() - 2);
  int64_t batch = std::max(ba, bb);
  std::vector<double> out(batch * m * n);
  for (int64_t t = 0; t < batch; ++t)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = c.bias ? bias[j] : 0.0;
        for (int64_t q = 0; q < k; ++q) {
          const float* pa = a.data() + (ba == 1 ? 0 : t * m * k);
          const float* pb = b.data() + (bb == 1 ? 0 : t * k * n);
          double av = c.ta ? pa[q * m + i] : pa[i * k + q];
          double bv = c.tb ? pb[j * k + q] : pb[q * n + j];
          acc += av * bv;
        }
        out[(t * m + i) * n + j] = acc;
      }
  *batch_out = batch;
  *m_out = m;
  *n_out = n;
  return out;
}

const std::vector<Case> kCases = {
    {{3, 4}, {4, 5}, false, false, false},       {{3, 4}, {5, 4}, false, true, true},
    {{4, 3}, {4, 5}, true, false, false},        {{4, 3}, {5, 4}, true, true, true},
    {{2, 3, 4}, {4, 5}, false, false, true},     {{2, 3, 4}, {5, 4}, false, true, false},
    {{2, 3, 4}, {2, 4, 5}, false, false, false}, {{2, 4, 3}, {2, 5, 4}, true, true, false},
    {{3, 4}, {2, 4, 5}, false, false, false},    {{2, 4, 3}, {4, 5}, true, false, false},
    {{1, 1, 1}, {1, 1}, false, false, true},     {{2, 2, 7, 13}, {2, 2, 13, 1}, false, false, false},
};

class MatmulCase : public ::testing::TestWithParam<Case> {};

void CheckForward(const Case& c, DType dtype, double tol) {
  auto g = std::make_unique<ir::Graph>("mm");
  ir::Builder b(g.get());
  auto* a = b.Input("a", dtype, Shape(c.a));
  auto* w = b.Input("b", dtype, Shape(c.b));
  int64_t n = c.tb ? Shape(c.b)[-2] : Shape(c.b)[-1];
  auto* bias = c.bias ? b.Input("bias", dtype, Shape{n}) : nullptr;
  g->outputs() = {ir::ops::Matmul(b, a, w, c.ta, c.tb, bias, "out")};
  GraphRunner r(std::move(g));
  auto av = testing::RoundTo(dtype, RandomUniform(Shape(c.a).numel(), 11));
  auto bv = testing::RoundTo(dtype, RandomUniform(Shape(c.b).numel(), 12));
  auto biasv = testing::RoundTo(dtype, RandomUniform(n, 13));
  r.Set("a", av);
  r.Set("b", bv);
  if (c.bias) r.Set("bias", biasv);
  r.Run();
  int64_t batch, m, nn;
  auto ref = Naive(c, av, bv, biasv, &batch, &m, &nn);
  auto out = r.Get("out");
  ASSERT_EQ(out.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(out[i], ref[i], tol * (1 + std::fabs(ref[i]))) << i;
}

TEST_P(MatmulCase, ForwardF32) { CheckForward(GetParam(), DType::kF32, 1e-5); }
TEST_P(MatmulCase, ForwardBf16) { CheckForward(GetParam(), DType::kBF16, 8e-3); }
TEST_P(MatmulCase, ForwardF16) { CheckForward(GetParam(), DType::kF16, 1e-3); }

TEST_P(MatmulCase, Backward) {
  const Case c = GetParam();
  int64_t n = c.tb ? Shape(c.b)[-2] : Shape(c.b)[-1];
  std::vector<testing::GradInput> in = {{"a", Shape(c.a)}, {"b", Shape(c.b)}};
  if (c.bias) in.push_back({"bias", Shape{n}});
  GradCheck(in, [c](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return std::vector<ir::Value*>{ir::ops::Matmul(b, v[0], v[1], c.ta, c.tb, c.bias ? v[2] : nullptr)};
  });
}

INSTANTIATE_TEST_SUITE_P(All, MatmulCase, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) { return "case" + std::to_string(i.index); });

TEST(Matmul, RejectsMismatchedInnerDims) {
  ir::Graph g("bad");
  ir::Builder b(&g);
  auto* a = b.Input("a", DType::kF32, Shape{3, 4});
  auto* w = b.Input("w", DType::kF32, Shape{5, 6});
  auto r = b.TryEmit("matmul", {a, w});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("inner dims"), std::string::npos);
  auto* w3 = b.Input("w3", DType::kF32, Shape{3, 4, 5});
  auto* a2 = b.Input("a2", DType::kF32, Shape{2, 3, 4});
  EXPECT_FALSE(b.TryEmit("matmul", {a2, w3}).ok());  // batch dims 2 vs 3
}

TEST(Matmul, CostIsTwoMNK) {
  ir::Graph g("cost");
  ir::Builder b(&g);
  auto* a = b.Input("a", DType::kF32, Shape{2, 3, 4});
  auto* w = b.Input("w", DType::kF32, Shape{5, 4});
  auto* out = ir::ops::Linear(b, a, w);
  ir::Cost c = ir::NodeCost(*out->producer);
  EXPECT_DOUBLE_EQ(c.flops, 2.0 * 6 * 5 * 4);
  EXPECT_DOUBLE_EQ(c.bytes_read, (24 + 20) * 4.0);
  EXPECT_DOUBLE_EQ(c.bytes_written, 30 * 4.0);
}

}  // namespace
}  // namespace zt

// The device-comparison harness itself, run CPU against a second CPU backend (here, without a
// GPU): identical results pass; a poisoned run would expose unwritten outputs.
namespace zt {
namespace {
TEST(DeviceCompareHarness, CpuAgainstCpuAgreesWithGradients) {
  testing::CompareOptions o;
  o.gradients = true;
  o.other = [] { return std::make_unique<CpuBackend>(); };
  testing::CompareWithCpu({{"a", Shape{3, 5}}, {"b", Shape{4, 5}}},
                          [](ir::Builder& b, const std::vector<ir::Value*>& v) {
                            return std::vector<ir::Value*>{ir::ops::Linear(b, v[0], v[1])};
                          },
                          o);
}
}  // namespace
}  // namespace zt
