// The fused residual-add forms of the layernorm and rmsnorm families (ir/ops/layernorm.cc,
// rmsnorm.cc): add_layernorm / add_rmsnorm and the optional dresidual input of layernorm_bwd /
// rmsnorm_bwd. Shape rules accept and reject (naming the input); costs count the extra add; and
// the CPU kernels are BIT-IDENTICAL to the two-node compositions they replace (add then norm;
// norm_bwd then add, with dresidual as either operand of the add) for f32, bf16 and f16, C = 1,
// 7, 768, 1000, one row, several rows and many rows (several dw chunks).
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "ir/ops/elementwise.h"
#include "ir/ops/layernorm.h"
#include "ir/ops/rmsnorm.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::GraphRunner;
using testing::RandomUniform;
using testing::RoundTo;

const DType kFloatTypes[] = {DType::kF32, DType::kBF16, DType::kF16};

void ExpectRejected(ir::Builder& b, const char* op, std::vector<ir::Value*> in, const char* needle) {
  auto r = b.TryEmit(op, std::move(in));
  ASSERT_FALSE(r.ok()) << op << " accepted; expected an error containing '" << needle << "'";
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
}

TEST(AddNorm, ShapeRules) {
  ir::Graph g("rules");
  ir::Builder b(&g);
  auto* a = b.Input("a", DType::kBF16, Shape{2, 3, 4});
  auto* a2 = b.Input("a2", DType::kBF16, Shape{2, 3, 4});
  auto* row = b.Input("row", DType::kBF16, Shape{3, 4});  // would broadcast in `add`
  auto* af32 = b.Input("af32", DType::kF32, Shape{2, 3, 4});
  auto* w = b.Input("w", DType::kBF16, Shape{4});
  auto* w5 = b.Input("w5", DType::kBF16, Shape{5});
  auto* ai = b.Input("ai", DType::kI32, Shape{2, 3, 4});

  auto ln = ir::ops::AddLayerNorm(b, a, a2, w, w, 1e-5, "ln");
  EXPECT_EQ(ln.sum->name, "ln");
  EXPECT_EQ(ln.y->name, "ln.y");
  EXPECT_EQ(ln.mean->name, "ln.mean");
  EXPECT_EQ(ln.rstd->name, "ln.rstd");
  EXPECT_EQ(ln.sum->dtype, DType::kBF16);
  EXPECT_EQ(ln.y->shape, (Shape{2, 3, 4}));
  EXPECT_EQ(ln.mean->dtype, DType::kF32);
  EXPECT_EQ(ln.rstd->shape, (Shape{2, 3}));
  EXPECT_DOUBLE_EQ(b.Emit("add_layernorm", {a, a2, w, w})[0]->producer->attrs.GetFloat("eps"), 1e-5);
  ExpectRejected(b, "add_layernorm", {a, row, w, w}, "(b)");
  ExpectRejected(b, "add_layernorm", {a, af32, w, w}, "(b)");
  ExpectRejected(b, "add_layernorm", {a, a2, w5, w}, "(w)");
  ExpectRejected(b, "add_layernorm", {a, a2, w, w5}, "(bias)");
  ExpectRejected(b, "add_layernorm", {ai, ai, w, w}, "(a)");
  ExpectRejected(b, "add_layernorm", {a, a2, w}, "takes 4 inputs");

  auto rn = ir::ops::AddRmsNorm(b, a, a2, w, 1e-6, "rn");
  EXPECT_EQ(rn.sum->name, "rn");
  EXPECT_EQ(rn.y->name, "rn.y");
  EXPECT_EQ(rn.rstd->name, "rn.rstd");
  EXPECT_EQ(rn.rstd->shape, (Shape{2, 3}));
  EXPECT_DOUBLE_EQ(b.Emit("add_rmsnorm", {a, a2, w})[0]->producer->attrs.GetFloat("eps"), 1e-6);
  ExpectRejected(b, "add_rmsnorm", {a, row, w}, "(b)");
  ExpectRejected(b, "add_rmsnorm", {a, af32, w}, "(b)");
  ExpectRejected(b, "add_rmsnorm", {a, a2, w5}, "(w)");
  ExpectRejected(b, "add_rmsnorm", {ai, ai, w}, "(a)");

  // The optional dresidual of the backward ops: dy's (x's) type.
  EXPECT_TRUE(b.TryEmit("layernorm_bwd", {a, a, w, ln.mean, ln.rstd, a2}).ok());
  ExpectRejected(b, "layernorm_bwd", {a, a, w, ln.mean, ln.rstd, af32}, "(dresidual)");
  ExpectRejected(b, "layernorm_bwd", {a, a, w, ln.mean, ln.rstd, row}, "(dresidual)");
  ExpectRejected(b, "layernorm_bwd", {a, a, w, ln.mean, ln.rstd, a2, a2}, "takes 5..6 inputs");
  EXPECT_TRUE(b.TryEmit("rmsnorm_bwd", {a, a, w, rn.rstd, a2}).ok());
  ExpectRejected(b, "rmsnorm_bwd", {a, a, w, rn.rstd, af32}, "(dresidual)");
  ExpectRejected(b, "rmsnorm_bwd", {a, a, w, rn.rstd, row}, "(dresidual)");
  ExpectRejected(b, "rmsnorm_bwd", {a, a, w, rn.rstd, a2, a2}, "takes 4..5 inputs");
}

TEST(AddNorm, Costs) {
  ir::Graph g("cost");
  ir::Builder b(&g);
  auto* a = b.Input("a", DType::kF32, Shape{4, 8});
  auto* w = b.Input("w", DType::kF32, Shape{8});
  auto ln = ir::ops::AddLayerNorm(b, a, a, w, w, 1e-5);
  ir::Cost c = ir::NodeCost(*ln.sum->producer);
  EXPECT_DOUBLE_EQ(c.flops, 9.0 * 32);  // layernorm's 8 + the add
  EXPECT_DOUBLE_EQ(c.bytes_read, (32 + 32 + 8 + 8) * 4.0);
  EXPECT_DOUBLE_EQ(c.bytes_written, (32 + 32 + 4 + 4) * 4.0);
  auto rn = ir::ops::AddRmsNorm(b, a, a, w, 1e-6);
  ir::Cost cr = ir::NodeCost(*rn.sum->producer);
  EXPECT_DOUBLE_EQ(cr.flops, 5.0 * 32);
  EXPECT_DOUBLE_EQ(cr.bytes_written, (32 + 32 + 4) * 4.0);
  ir::Cost plain = ir::NodeCost(*b.Emit("layernorm_bwd", {a, a, w, ln.mean, ln.rstd})[0]->producer);
  ir::Cost fused = ir::NodeCost(*b.Emit("layernorm_bwd", {a, a, w, ln.mean, ln.rstd, a})[0]->producer);
  EXPECT_DOUBLE_EQ(fused.flops, plain.flops + 32);
  EXPECT_DOUBLE_EQ(fused.bytes_read, plain.bytes_read + 32 * 4.0);
  ir::Cost rplain = ir::NodeCost(*b.Emit("rmsnorm_bwd", {a, a, w, rn.rstd})[0]->producer);
  ir::Cost rfused = ir::NodeCost(*b.Emit("rmsnorm_bwd", {a, a, w, rn.rstd, a})[0]->producer);
  EXPECT_DOUBLE_EQ(rfused.flops, rplain.flops + 32);
  EXPECT_DOUBLE_EQ(rfused.bytes_read, rplain.bytes_read + 32 * 4.0);
}

// One graph computing both forms from the same inputs a, b, w, bias, dy, dres:
//   unfused: r = add(a, b); n = norm(r, ...); g = norm_bwd(dy, r, ..., n's stats); s = add(g, dres)
//            (or add(dres, g): `dres_first`);
//   fused:   f = add_norm(a, b, ...); fg = norm_bwd(dy, f.sum, ..., f's stats, dres).
// Returns the pairs of output names that must hold the same bits.
std::vector<std::pair<std::string, std::string>> BuildBoth(ir::Builder& b, bool layernorm, const Shape& xs, DType dt,
                                                           bool dres_first) {
  const Shape cs{xs[-1]};
  auto* a = b.Input("a", dt, xs);
  auto* bb = b.Input("b", dt, xs);
  auto* w = b.Input("w", dt, cs);
  auto* bias = b.Input("bias", dt, cs);
  auto* dy = b.Input("dy", dt, xs);
  auto* dres = b.Input("dres", dt, xs);
  ir::Graph& g = b.graph();
  ir::Value* r = ir::ops::Add(b, a, bb, "r");
  ir::Value* acc;
  std::vector<ir::Value*> fused_bwd;
  if (layernorm) {
    auto n = ir::ops::LayerNorm(b, r, w, bias, 1e-5, "n");
    auto gr = b.Emit("layernorm_bwd", {dy, r, w, n.mean, n.rstd}, {}, "g");
    acc = dres_first ? ir::ops::Add(b, dres, gr[0], "s") : ir::ops::Add(b, gr[0], dres, "s");
    auto f = ir::ops::AddLayerNorm(b, a, bb, w, bias, 1e-5, "f");
    fused_bwd = b.Emit("layernorm_bwd", {dy, f.sum, w, f.mean, f.rstd, dres}, {}, "fg");
    g.outputs() = {r, n.y, n.mean, n.rstd, acc, gr[1], gr[2], f.sum, f.y, f.mean, f.rstd};
    g.outputs().insert(g.outputs().end(), fused_bwd.begin(), fused_bwd.end());
    return {{"r", "f"}, {"n", "f.y"}, {"n.mean", "f.mean"}, {"n.rstd", "f.rstd"},
            {"s", "fg"}, {"g.dw", "fg.dw"}, {"g.db", "fg.db"}};
  }
  auto n = ir::ops::RmsNorm(b, r, w, 1e-6, "n");
  auto gr = b.Emit("rmsnorm_bwd", {dy, r, w, n.rstd}, {}, "g");
  acc = dres_first ? ir::ops::Add(b, dres, gr[0], "s") : ir::ops::Add(b, gr[0], dres, "s");
  auto f = ir::ops::AddRmsNorm(b, a, bb, w, 1e-6, "f");
  fused_bwd = b.Emit("rmsnorm_bwd", {dy, f.sum, w, f.rstd, dres}, {}, "fg");
  g.outputs() = {r, n.y, n.rstd, acc, gr[1], f.sum, f.y, f.rstd};
  g.outputs().insert(g.outputs().end(), fused_bwd.begin(), fused_bwd.end());
  return {{"r", "f"}, {"n", "f.y"}, {"n.rstd", "f.rstd"}, {"s", "fg"}, {"g.dw", "fg.dw"}};
}

void ExpectFusedBitIdentical(bool layernorm, const Shape& xs, DType dt, bool dres_first) {
  SCOPED_TRACE(std::string(layernorm ? "layernorm " : "rmsnorm ") + DTypeName(dt) + " x " + xs.ToString() +
               (dres_first ? " add(dres, dx)" : " add(dx, dres)"));
  auto g = std::make_unique<ir::Graph>("both");
  ir::Builder b(g.get());
  auto pairs = BuildBoth(b, layernorm, xs, dt, dres_first);
  GraphRunner run(std::move(g));
  const int64_t n = xs.numel(), c = xs[-1];
  // a and b of different ranges, so that the rounded sum differs from the exact one in bf16/f16.
  run.Set("a", RoundTo(dt, RandomUniform(n, 1, -2.0f, 3.0f)));
  run.Set("b", RoundTo(dt, RandomUniform(n, 2, -0.37f, 0.41f)));
  run.Set("w", RoundTo(dt, RandomUniform(c, 3, 0.5f, 1.5f)));
  run.Set("bias", RoundTo(dt, RandomUniform(c, 4)));
  run.Set("dy", RoundTo(dt, RandomUniform(n, 5)));
  run.Set("dres", RoundTo(dt, RandomUniform(n, 6, -0.3f, 0.3f)));
  run.Run();
  for (const auto& [plain, fused] : pairs) {
    std::vector<float> want = run.Get(plain), got = run.Get(fused);
    ASSERT_EQ(want.size(), got.size()) << plain;
    int64_t differ = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      if (std::memcmp(&want[i], &got[i], sizeof(float)) != 0 && differ++ < 3) {
        ADD_FAILURE() << "%" << fused << "[" << i << "] = " << got[i] << ", %" << plain << "[" << i
                      << "] = " << want[i];
      }
    }
    EXPECT_EQ(differ, 0) << differ << " of " << want.size() << " elements of %" << fused << " differ from %" << plain;
  }
}

const std::vector<Shape> kShapes = {{1, 1}, {3, 7}, {1, 768}, {4, 768}, {3, 1000}, {2, 3, 7}, {40, 7}, {17, 1000}};

TEST(AddNorm, LayerNormFusedIsBitIdenticalToTheComposition) {
  for (DType dt : kFloatTypes) {
    for (const Shape& s : kShapes) ExpectFusedBitIdentical(true, s, dt, false);
    ExpectFusedBitIdentical(true, Shape{5, 768}, dt, true);
  }
}

TEST(AddNorm, RmsNormFusedIsBitIdenticalToTheComposition) {
  for (DType dt : kFloatTypes) {
    for (const Shape& s : kShapes) ExpectFusedBitIdentical(false, s, dt, false);
    ExpectFusedBitIdentical(false, Shape{5, 768}, dt, true);
  }
}

}  // namespace
}  // namespace zt
