// Autodiff: a value used several times gets the sum of its gradients (checked numerically by
// running the graph), parameters the loss does not depend on get zero gradients, values that do
// not depend on parameters get no backward nodes, integer inputs get no gradient, the seed option
// scales every gradient, and misuse is reported.
#include <gtest/gtest.h>

#include <cmath>

#include "ir/autodiff.h"
#include "ir/builder.h"
#include "ir/ops/constant.h"
#include "ir/ops/elementwise.h"
#include "ir/ops/matmul.h"
#include "ir/test_ops.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "support/graph_runner.h"

namespace zt::ir {
namespace {

using zt::testing::GraphRunner;
using zt::testing::RandomUniform;

// L = sum(x*x + 3x): x is used three times (twice by mul, once by scale); dL/dx = 2x + 3.
TEST(Autodiff, ValueUsedSeveralTimesGetsSummedGradients) {
  auto g = std::make_unique<Graph>("quad");
  Builder b(g.get());
  Value* x = b.Param("x", DType::kF32, Shape{7});
  Value* y = ops::Add(b, ops::Mul(b, x, x, "xx"), ops::Scale(b, x, 3.0, "x3"), "y");
  Value* loss = ops::ReduceSumTo(b, y, Shape{}, "loss");
  ASSERT_TRUE(AppendBackward(*g, loss, {x}).ok());
  ASSERT_TRUE(Verify(*g).ok()) << Verify(*g).ToString();
  ASSERT_EQ(g->grads().size(), 1u);
  EXPECT_EQ(g->grads()[0].first, x);
  EXPECT_EQ(g->grads()[0].second->category, MemCategory::kGradients);
  EXPECT_EQ(g->loss(), loss);
  int adds = 0;
  for (const auto& n : g->nodes())
    if (n->phase == Phase::kBackward && n->op->name == "add") ++adds;
  EXPECT_EQ(adds, 2) << "three contributions to dx need two accumulating adds\n" << PrintGraph(*g);

  GraphRunner r(std::move(g));
  std::vector<float> xv = RandomUniform(7, 11, -2.0f, 2.0f);
  r.Set("x", xv);
  r.Run();
  std::vector<float> dx = r.Get(r.graph().GradOf(r.value("x")));
  double want_loss = 0;
  for (int i = 0; i < 7; ++i) {
    EXPECT_NEAR(dx[i], 2.0 * xv[i] + 3.0, 1e-5) << i;
    want_loss += static_cast<double>(xv[i]) * xv[i] + 3.0 * xv[i];
  }
  EXPECT_NEAR(r.Get("loss")[0], want_loss, 1e-4);
}

// Same function through broadcasting: y = x * v + v where v:[3] is shared by x's rows; dL/dv sums
// over the rows and over both uses.
TEST(Autodiff, BroadcastUseIsSummedOverRows) {
  auto g = std::make_unique<Graph>("bc");
  Builder b(g.get());
  Value* x = b.Input("x", DType::kF32, Shape{4, 3});
  Value* v = b.Param("v", DType::kF32, Shape{3});
  Value* loss = ops::ReduceSumTo(b, ops::Add(b, ops::Mul(b, x, v), ops::BroadcastTo(b, v, Shape{4, 3})), Shape{}, "loss");
  ASSERT_TRUE(AppendBackward(*g, loss, {v}).ok());
  GraphRunner r(std::move(g));
  auto xv = RandomUniform(12, 5);
  r.Set("x", xv);
  r.Set("v", {0.5f, -1.0f, 2.0f});
  r.Run();
  auto dv = r.Get(r.graph().GradOf(r.value("v")));
  for (int j = 0; j < 3; ++j) {
    double want = 4.0;  // broadcast_to over 4 rows
    for (int i = 0; i < 4; ++i) want += xv[i * 3 + j];
    EXPECT_NEAR(dv[j], want, 1e-5) << j;
  }
}

TEST(Autodiff, ParamsNotReachingTheLossGetZeroGradients) {
  auto g = std::make_unique<Graph>("zero");
  Builder b(g.get());
  Value* x = b.Param("x", DType::kF32, Shape{3});
  Value* unused = b.Param("unused", DType::kF32, Shape{2, 2});
  Value* side = b.Param("side", DType::kBF16, Shape{5});
  ops::Scale(b, side, 2.0, "side_branch");  // used, but not on the way to the loss
  Value* loss = ops::ReduceSumTo(b, ops::Mul(b, x, x), Shape{}, "loss");
  size_t forward_nodes = g->nodes().size();
  ASSERT_TRUE(AppendBackward(*g, loss, ParamsOf(*g)).ok());
  ASSERT_EQ(g->grads().size(), 3u);
  for (Value* p : {unused, side}) {
    Value* gp = g->GradOf(p);
    ASSERT_NE(gp, nullptr) << p->name;
    EXPECT_EQ(gp->shape, p->shape);
    EXPECT_EQ(gp->dtype, p->dtype);
    EXPECT_EQ(gp->category, MemCategory::kGradients);
    ASSERT_NE(gp->producer, nullptr);
    EXPECT_EQ(gp->producer->op->name, "fill");
    EXPECT_EQ(gp->producer->attrs.GetFloat("value"), 0.0);
  }
  // The side branch gets no backward nodes: nothing flows into it.
  for (size_t i = forward_nodes; i < g->nodes().size(); ++i)
    for (Value* in : g->nodes()[i]->inputs) EXPECT_NE(in->name, "side_branch") << PrintGraph(*g);

  GraphRunner r(std::move(g));
  r.Set("x", {1, 2, 3});
  r.Set("unused", {9, 9, 9, 9});
  r.Set("side", {1, 1, 1, 1, 1});
  r.Run();
  for (float v : r.Get(r.graph().GradOf(r.value("unused")))) EXPECT_EQ(v, 0.0f);
  for (float v : r.Get(r.graph().GradOf(r.value("side")))) EXPECT_EQ(v, 0.0f);
  auto dx = r.Get(r.graph().GradOf(r.value("x")));
  EXPECT_FLOAT_EQ(dx[0], 2);
  EXPECT_FLOAT_EQ(dx[2], 6);
}

// L = sum(x * c) with c = scale(u, 2) computed from an input only: the backward has exactly the
// seed, the broadcast of the seed and dx = dz * c; nothing for c or u.
TEST(Autodiff, NoBackwardNodesForValuesThatDoNotDependOnParams) {
  auto g = std::make_unique<Graph>("nodep");
  Builder b(g.get());
  Value* x = b.Param("x", DType::kF32, Shape{2, 3});
  Value* u = b.Input("u", DType::kF32, Shape{3});
  Value* c = ops::Scale(b, u, 2.0, "c");
  Value* c2 = ops::Add(b, c, c, "c2");  // used twice, still no gradient
  Value* loss = ops::ReduceSumTo(b, ops::Mul(b, x, c2, "z"), Shape{}, "loss");
  size_t forward_nodes = g->nodes().size();
  ASSERT_TRUE(AppendBackward(*g, loss, {x}).ok());
  std::vector<std::string> ops_seen;
  for (size_t i = forward_nodes; i < g->nodes().size(); ++i) {
    const Node* n = g->nodes()[i].get();
    EXPECT_EQ(n->phase, Phase::kBackward);
    ops_seen.push_back(n->op->name);
    for (Value* o : n->outputs) {
      EXPECT_EQ(o->name.find("grad.c"), std::string::npos) << o->name;
      EXPECT_EQ(o->name.find("grad.z.dy"), std::string::npos) << o->name;
    }
  }
  EXPECT_EQ(ops_seen, (std::vector<std::string>{"fill", "broadcast_to", "mul"})) << PrintGraph(*g);
}

// ids = argmax(w) is an integer value that depends on a parameter; gather(table, ids) must not ask
// for a gradient of ids, whether or not the op declares ids non-differentiable.
TEST(Autodiff, IntegerInputsGetNoGradient) {
  testing::RegisterTestOps();
  for (const char* gather : {"test_gather", "test_gather_undeclared"}) {
    Graph g("ints");
    Builder b(&g);
    Value* w = b.Param("w", DType::kF32, Shape{4, 5});
    Value* table = b.Param("table", DType::kF32, Shape{5, 3});
    Value* ids = b.Emit1("test_argmax", {w}, {}, "ids");
    Value* e = b.Emit1(gather, {table, ids}, {}, "e");
    Value* loss = ops::ReduceSumTo(b, e, Shape{}, "loss");
    testing::LastGatherNeed().clear();
    Status s = AppendBackward(g, loss, ParamsOf(g));
    ASSERT_TRUE(s.ok()) << gather << ": " << s.ToString();
    EXPECT_EQ(testing::LastGatherNeed(), (std::vector<bool>{true, false})) << gather;
    for (const auto& n : g.nodes())
      for (Value* o : n->outputs) EXPECT_EQ(o->name.find("dids"), std::string::npos) << gather << ": " << o->name;
    // w influences the loss only through integers: its gradient is zeros.
    EXPECT_EQ(g.GradOf(w)->producer->op->name, "fill") << gather;
    EXPECT_TRUE(Verify(g).ok()) << Verify(g).ToString();
  }
}

TEST(Autodiff, SeedScalesEveryGradient) {
  auto g = std::make_unique<Graph>("seed");
  Builder b(g.get());
  Value* x = b.Param("x", DType::kF32, Shape{3});
  Value* seed = b.Input("loss_scale", DType::kF32, Shape{});
  Value* loss = ops::ReduceSumTo(b, ops::Scale(b, x, 1.5), Shape{}, "loss");
  AutodiffOptions o;
  o.seed = seed;
  ASSERT_TRUE(AppendBackward(*g, loss, {x}, o).ok());
  GraphRunner r(std::move(g));
  r.Set("x", {1, 2, 3});
  r.Set("loss_scale", {4.0f});
  r.Run();
  for (float v : r.Get(r.graph().GradOf(r.value("x")))) EXPECT_FLOAT_EQ(v, 6.0f);
}

TEST(Autodiff, ErrorsAreReported) {
  testing::RegisterTestOps();
  Graph g("err");
  Builder b(&g);
  Value* x = b.Param("x", DType::kF32, Shape{3});
  Value* in = b.Input("in", DType::kF32, Shape{3});
  Value* v = ops::Scale(b, x, 2.0, "v");
  Value* loss = ops::ReduceSumTo(b, v, Shape{}, "loss");

  Status s = AppendBackward(g, v, {x});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("loss %v must be a floating scalar"), std::string::npos) << s.ToString();
  s = AppendBackward(g, loss, {in});
  EXPECT_NE(s.message().find("%in is not a param"), std::string::npos) << s.ToString();
  AutodiffOptions bad_seed;
  bad_seed.seed = in;
  s = AppendBackward(g, loss, {x}, bad_seed);
  EXPECT_NE(s.message().find("seed %in must have the loss's type"), std::string::npos) << s.ToString();
  s = AppendBackward(g, nullptr, {x});
  EXPECT_FALSE(s.ok());

  Graph h("nograd");
  Builder bh(&h);
  Value* p = bh.Param("p", DType::kF32, Shape{3});
  Value* q = bh.Emit1("test_nograd", {p}, {}, "q");
  Value* l = ops::ReduceSumTo(bh, q, Shape{}, "l");
  s = AppendBackward(h, l, {p});
  EXPECT_NE(s.message().find("node #0 'test_nograd' -> %q has no backward rule"), std::string::npos) << s.ToString();

  ASSERT_TRUE(AppendBackward(g, loss, {x}).ok());
  s = AppendBackward(g, loss, {x});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
}

TEST(Autodiff, ParamsOfInCreationOrder) {
  Graph g("p");
  Builder b(&g);
  Value* a = b.Param("a", DType::kF32, Shape{1});
  b.Input("i", DType::kF32, Shape{1});
  Value* c = b.Param("c", DType::kF32, Shape{1});
  b.State("s", DType::kF32, Shape{1}, MemCategory::kOptimizerState);
  EXPECT_EQ(ParamsOf(g), (std::vector<Value*>{a, c}));
}

}  // namespace
}  // namespace zt::ir
