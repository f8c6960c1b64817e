// Elementwise family: forward values against direct formulas, backward against finite differences
// (including broadcast shapes and sizes that are not multiples of anything).
#include <gtest/gtest.h>

#include "core/mem_category.h"
#include "ir/op_registry.h"
#include "ir/ops/elementwise.h"
#include "support/gradcheck.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::GradCheck;
using testing::GradInput;
using testing::GraphRunner;
using testing::RandomUniform;

TEST(Elementwise, ForwardBroadcast) {
  auto g = std::make_unique<ir::Graph>("ew");
  ir::Builder b(g.get());
  auto* x = b.Input("x", DType::kF32, Shape{2, 3, 5});
  auto* y = b.Input("y", DType::kF32, Shape{5});
  g->outputs() = {ir::ops::Add(b, x, y, "sum"), ir::ops::Mul(b, x, y, "prod"), ir::ops::Scale(b, x, -2.5, "sc"),
                  ir::ops::ReduceSumTo(b, x, Shape{3, 5}, "red"), ir::ops::BroadcastTo(b, y, Shape{4, 5}, "bc")};
  GraphRunner r(std::move(g));
  auto xv = RandomUniform(30, 1), yv = RandomUniform(5, 2);
  r.Set("x", xv);
  r.Set("y", yv);
  r.Run();
  auto sum = r.Get("sum"), prod = r.Get("prod"), sc = r.Get("sc"), red = r.Get("red"), bc = r.Get("bc");
  for (int i = 0; i < 30; ++i) {
    EXPECT_FLOAT_EQ(sum[i], xv[i] + yv[i % 5]);
    EXPECT_FLOAT_EQ(prod[i], xv[i] * yv[i % 5]);
    EXPECT_FLOAT_EQ(sc[i], -2.5f * xv[i]);
  }
  for (int j = 0; j < 15; ++j) EXPECT_NEAR(red[j], xv[j] + xv[j + 15], 1e-6);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(bc[i], yv[i % 5]);
}

TEST(Elementwise, Bf16StorageRoundsResult) {
  auto g = std::make_unique<ir::Graph>("ew");
  ir::Builder b(g.get());
  auto* x = b.Input("x", DType::kBF16, Shape{7});
  auto* y = b.Input("y", DType::kBF16, Shape{7});
  g->outputs() = {ir::ops::Add(b, x, y, "sum")};
  GraphRunner r(std::move(g));
  auto xv = testing::RoundTo(DType::kBF16, RandomUniform(7, 3)), yv = testing::RoundTo(DType::kBF16, RandomUniform(7, 4));
  r.Set("x", xv);
  r.Set("y", yv);
  r.Run();
  auto sum = r.Get("sum");
  for (int i = 0; i < 7; ++i) EXPECT_EQ(sum[i], BF16ToFloat(FloatToBF16(xv[i] + yv[i])));
}

TEST(Elementwise, RejectsBadShapes) {
  ir::Graph g("bad");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kF32, Shape{2, 3});
  auto* y = b.Input("y", DType::kF32, Shape{2});
  auto r = b.TryEmit("add", {x, y});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("trailing dimensions"), std::string::npos) << r.status().ToString();
  auto* z = b.Input("z", DType::kBF16, Shape{3});
  EXPECT_FALSE(b.TryEmit("mul", {x, z}).ok());
  EXPECT_FALSE(b.TryEmit("reduce_sum_to", {x}, {{"shape", std::vector<int64_t>{2}}}).ok());
}

// reduce_sum_to's row chunks (the device kernel's partial sums) and the workspace they ask for:
// a function of (rows, m) only; none for m <= 1, few rows or very wide m. The CPU kernel ignores
// the workspace and sums each column in row order, so a graph with a large reduce_sum_to still
// matches a direct sum.
TEST(Elementwise, ReduceSumToWorkspace) {
  EXPECT_EQ(ir::ReduceSumToChunks(16384, 1), 1);
  EXPECT_EQ(ir::ReduceSumToChunks(0, 768), 1);
  EXPECT_EQ(ir::ReduceSumToChunks(32, 768), 1);
  EXPECT_EQ(ir::ReduceSumToChunks(33, 768), 2);
  EXPECT_EQ(ir::ReduceSumToChunks(16384, 768), 170);   // 1 MiB of f64 partials at most
  EXPECT_EQ(ir::ReduceSumToChunks(16384, 2304), 56);
  EXPECT_EQ(ir::ReduceSumToChunks(16384, 3072), 42);
  EXPECT_EQ(ir::ReduceSumToChunks(16, 1024 * 768), 1);
  EXPECT_EQ(ir::ReduceSumToChunks(100000, 3), 1024);   // the cap
  EXPECT_EQ(ir::ReduceSumToWorkspaceBytes(32, 768), 0u);
  EXPECT_EQ(ir::ReduceSumToWorkspaceBytes(16384, 1), 0u);
  EXPECT_EQ(ir::ReduceSumToWorkspaceBytes(16384, 768), AlignedBytes(170 * 768 * 8));
  EXPECT_EQ(ir::ReduceSumToWorkspaceBytes(1000, 3), AlignedBytes(32 * 3 * 8));

  auto g = std::make_unique<ir::Graph>("ew");
  ir::Builder b(g.get());
  auto* x = b.Input("x", DType::kF32, Shape{2, 500, 7});
  ir::Value* red = ir::ops::ReduceSumTo(b, x, Shape{7}, "red");
  EXPECT_EQ(ir::NodeWorkspace(*red->producer), ir::ReduceSumToWorkspaceBytes(1000, 7));
  EXPECT_GT(ir::NodeWorkspace(*red->producer), 0u);
  g->outputs() = {red};
  GraphRunner r(std::move(g));
  auto xv = RandomUniform(7000, 5);
  r.Set("x", xv);
  r.Run();
  auto got = r.Get("red");
  for (int j = 0; j < 7; ++j) {
    double sum = 0;
    for (int i = 0; i < 1000; ++i) sum += xv[i * 7 + j];
    EXPECT_EQ(got[j], static_cast<float>(sum)) << "column " << j;
  }
}

class ElementwiseGrad : public ::testing::TestWithParam<std::vector<int64_t>> {};

TEST_P(ElementwiseGrad, AddMulScaleBroadcast) {
  Shape xs(GetParam());
  Shape ys = xs.Slice(1, xs.rank());
  GradCheck({{"x", xs}, {"y", ys}}, [](ir::Builder& b, const std::vector<ir::Value*>& in) {
    using namespace ir::ops;
    return std::vector<ir::Value*>{Add(b, in[0], in[1]), Mul(b, in[0], in[1]), Scale(b, in[0], 0.75)};
  });
}

TEST_P(ElementwiseGrad, ReduceAndBroadcast) {
  Shape xs(GetParam());
  GradCheck({{"x", xs}}, [xs](ir::Builder& b, const std::vector<ir::Value*>& in) {
    using namespace ir::ops;
    ir::Value* r = ReduceSumTo(b, in[0], xs.Slice(1, xs.rank()));
    return std::vector<ir::Value*>{r, BroadcastTo(b, r, Shape(std::vector<int64_t>{3, xs[1], xs[2]}))};
  });
}

INSTANTIATE_TEST_SUITE_P(Shapes, ElementwiseGrad,
                         ::testing::Values(std::vector<int64_t>{1, 1, 1}, std::vector<int64_t>{2, 3, 5},
                                           std::vector<int64_t>{3, 1, 7}));

}  // namespace
}  // namespace zt
