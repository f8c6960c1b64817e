// LayerNorm family: forward values and saved statistics against a naive f64 reference (f32, bf16,
// f16 storage), layernorm_bwd values against the f64 Jacobian, gradients of x, w, b by finite
// differences, dw/db bit-identical for any thread count, shape rules and cost.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>
#include <cstring>

#include "ir/ops/layernorm.h"
#include "kernels/cpu/layernorm.h"
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


struct Ref {
  std::vector<double> y, mean, rstd;
  std::vector<double> dx, dw, db;
};

// Naive f64 layernorm of rows of length c; with dy, also the gradients through the explicit
// Jacobian dy_j/dx_i = w_j rstd (delta_ij - 1/c - xhat_i xhat_j / c).
Ref Reference(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b, int64_t c,
              double eps, const std::vector<float>* dy = nullptr) {
  int64_t rows = static_cast<int64_t>(x.size()) / c;
  Ref r;
  r.y.resize(x.size());
  r.mean.resize(rows);
  r.rstd.resize(rows);
  r.dx.assign(x.size(), 0.0);
  r.dw.assign(c, 0.0);
  r.db.assign(c, 0.0);
  for (int64_t i = 0; i < rows; ++i) {
    const float* xr = x.data() + i * c;
    double mean = 0, var = 0;
    for (int64_t j = 0; j < c; ++j) mean += xr[j];
    mean /= c;
    for (int64_t j = 0; j < c; ++j) var += (xr[j] - mean) * (xr[j] - mean);
    var /= c;
    double rstd = 1.0 / std::sqrt(var + eps);
    r.mean[i] = mean;
    r.rstd[i] = rstd;
    std::vector<double> xhat(c);
    for (int64_t j = 0; j < c; ++j) {
      xhat[j] = (xr[j] - mean) * rstd;
      r.y[i * c + j] = xhat[j] * w[j] + b[j];
    }
    if (dy == nullptr) continue;
    const float* dyr = dy->data() + i * c;
    for (int64_t k = 0; k < c; ++k) {  // dx_k = sum_j dy_j dy_j/dx_k
      double acc = 0;
      for (int64_t j = 0; j < c; ++j)
        acc += dyr[j] * w[j] * rstd * ((j == k ? 1.0 : 0.0) - 1.0 / c - xhat[k] * xhat[j] / c);
      r.dx[i * c + k] = acc;
    }
    for (int64_t j = 0; j < c; ++j) {
      r.dw[j] += dyr[j] * xhat[j];
      r.db[j] += dyr[j];
    }
  }
  return r;
}

void ExpectNear(const std::vector<float>& got, const std::vector<double>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!(std::fabs(got[i] - want[i]) <= tol * (1 + std::fabs(want[i]))) && bad++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i];
  }
  EXPECT_EQ(bad, 0) << bad << " elements of " << what << " out of tolerance " << tol;
}

// A graph computing layernorm (named "ln") and, from a separate dy input, layernorm_bwd ("g").
std::unique_ptr<ir::Graph> ForwardBackwardGraph(const Shape& xs, DType dtype, double eps) {
  auto g = std::make_unique<ir::Graph>("ln");
  ir::Builder b(g.get());
  int64_t c = xs[-1];
  auto* x = b.Input("x", dtype, xs);
  auto* w = b.Input("w", dtype, Shape{c});
  auto* bias = b.Input("b", dtype, Shape{c});
  auto* dy = b.Input("dy", dtype, xs);
  auto ln = ir::ops::LayerNorm(b, x, w, bias, eps, "ln");
  auto grads = b.Emit("layernorm_bwd", {dy, x, w, ln.mean, ln.rstd}, {}, "g");
  g->outputs() = {ln.y, ln.mean, ln.rstd, grads[0], grads[1], grads[2]};
  return g;
}

struct Data {
  std::vector<float> x, w, b, dy;
};

Data MakeData(const Shape& xs, DType dtype, uint64_t seed) {
  int64_t c = xs[-1];
  // x off-centre so that subtracting the mean matters.
  return {RoundTo(dtype, RandomUniform(xs.numel(), seed, -2.0f, 3.0f)),
          RoundTo(dtype, RandomUniform(c, seed + 1, 0.5f, 1.5f)), RoundTo(dtype, RandomUniform(c, seed + 2)),
          RoundTo(dtype, RandomUniform(xs.numel(), seed + 3))};
}

void SetData(GraphRunner& r, const Data& d) {
  r.Set("x", d.x);
  r.Set("w", d.w);
  r.Set("b", d.b);
  r.Set("dy", d.dy);
}

const std::vector<std::vector<int64_t>> kShapes = {
    {1}, {7}, {3, 1}, {1, 7}, {4, 7}, {5, 8}, {2, 3, 13}, {2, 2, 33}, {1, 1, 1}, {3, 64}, {9, 100},
};

class LayerNormShapes : public ::testing::TestWithParam<std::vector<int64_t>> {};

// Tolerances (relative, |got - want| <= tol (1 + |want|)): f32 1e-5 (f32 arithmetic on O(1)
// values); bf16 8e-3 and f16 1e-3 on y, dx, dw, db (one rounding to 2^-9 resp. 2^-12 relative,
// plus f32 error); the f32 statistics stay at 1e-5 for every storage type since the inputs are
// exactly representable.
void CheckForwardBackward(const Shape& xs, DType dtype, double tol) {
  const double eps = 1e-5;
  GraphRunner r(ForwardBackwardGraph(xs, dtype, eps));
  Data d = MakeData(xs, dtype, 17);
  SetData(r, d);
  r.Run();
  Ref ref = Reference(d.x, d.w, d.b, xs[-1], eps, &d.dy);
  ExpectNear(r.Get("ln"), ref.y, tol, "y");
  ExpectNear(r.Get("ln.mean"), ref.mean, 1e-5, "mean");
  ExpectNear(r.Get("ln.rstd"), ref.rstd, 1e-5, "rstd");
  ExpectNear(r.Get("g"), ref.dx, tol, "dx");
  ExpectNear(r.Get("g.dw"), ref.dw, tol, "dw");
  ExpectNear(r.Get("g.db"), ref.db, tol, "db");
}

TEST_P(LayerNormShapes, F32) { CheckForwardBackward(Shape(GetParam()), DType::kF32, 1e-5); }
TEST_P(LayerNormShapes, Bf16) { CheckForwardBackward(Shape(GetParam()), DType::kBF16, 8e-3); }
TEST_P(LayerNormShapes, F16) { CheckForwardBackward(Shape(GetParam()), DType::kF16, 1e-3); }

TEST_P(LayerNormShapes, GradXWB) {
  Shape xs(GetParam());
  int64_t c = xs[-1];
  GradCheck({Arg("x", xs), Arg("w", Shape{c}, true, 0.5f, 1.5f), Arg("b", Shape{c})},
            [](ir::Builder& b, const std::vector<ir::Value*>& v) {
              return std::vector<ir::Value*>{ir::ops::LayerNorm(b, v[0], v[1], v[2], 1e-5).y};
            });
}

INSTANTIATE_TEST_SUITE_P(All, LayerNormShapes, ::testing::ValuesIn(kShapes),
                         [](const ::testing::TestParamInfo<std::vector<int64_t>>& i) {
                           std::string s = "s";
                           for (int64_t d : i.param) s += "_" + std::to_string(d);
                           return s;
                         });

// Only some inputs need gradients: the rule passes nullptr for the others.
TEST(LayerNorm, GradOfSomeInputs) {
  GradCheck({Arg("x", Shape{3, 5}, false), Arg("w", Shape{5}), Arg("b", Shape{5}, false)},
            [](ir::Builder& b, const std::vector<ir::Value*>& v) {
              return std::vector<ir::Value*>{ir::ops::LayerNorm(b, v[0], v[1], v[2], 1e-5).y};
            });
  GradCheck({Arg("x", Shape{2, 6}), Arg("w", Shape{6}, false), Arg("b", Shape{6}, false)},
            [](ir::Builder& b, const std::vector<ir::Value*>& v) {
              return std::vector<ir::Value*>{ir::ops::LayerNorm(b, v[0], v[1], v[2], 1e-5).y};
            });
}

// A larger eps changes rstd (and so the gradients): checks the attribute reaches the kernel.
TEST(LayerNorm, EpsAttribute) {
  Shape xs{4, 3};
  GraphRunner r(ForwardBackwardGraph(xs, DType::kF32, 0.5));
  Data d = MakeData(xs, DType::kF32, 5);
  SetData(r, d);
  r.Run();
  Ref ref = Reference(d.x, d.w, d.b, 3, 0.5, &d.dy);
  ExpectNear(r.Get("ln.rstd"), ref.rstd, 1e-6, "rstd");
  ExpectNear(r.Get("g"), ref.dx, 1e-5, "dx");
  GradCheck({Arg("x", xs), Arg("w", Shape{3}), Arg("b", Shape{3})},
            [](ir::Builder& b, const std::vector<ir::Value*>& v) {
              return std::vector<ir::Value*>{ir::ops::LayerNorm(b, v[0], v[1], v[2], 0.5).y};
            });
}

// dw/db are reduced over 1000 rows (many chunks): every output must be bit-identical for any
// thread count (ParallelFor partitions by thread count) and equal to the single-threaded run.
TEST(LayerNorm, BitIdenticalForAnyThreadCount) {
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    Shape xs{10, 100, 37};
    GraphRunner r(ForwardBackwardGraph(xs, dtype, 1e-5));
    Data d = MakeData(xs, dtype, 99);
    SetData(r, d);
    const char* names[] = {"ln", "ln.mean", "ln.rstd", "g", "g.dw", "g.db"};
    int saved = omp_get_max_threads();
    std::vector<std::vector<float>> single;
    for (int threads : {1, 2, 3, 4, 7, 16, 1}) {
      omp_set_num_threads(threads);
      r.Run();
      for (int k = 0; k < 6; ++k) {
        std::vector<float> got = r.Get(names[k]);
        if (single.size() < 6) {
          single.push_back(got);
        } else {
          ASSERT_EQ(got.size(), single[k].size());
          EXPECT_EQ(std::memcmp(got.data(), single[k].data(), got.size() * sizeof(float)), 0)
              << names[k] << " differs with " << threads << " threads (" << DTypeName(dtype) << ")";
        }
      }
    }
    omp_set_num_threads(saved);
    // The executor's dynamic memory mode allocates the workspace per node: same bits.
    GraphRunner dyn(ForwardBackwardGraph(xs, dtype, 1e-5), ExecMemoryMode::kDynamic);
    SetData(dyn, d);
    dyn.Run();
    for (int k = 0; k < 6; ++k) {
      std::vector<float> got = dyn.Get(names[k]);
      EXPECT_EQ(std::memcmp(got.data(), single[k].data(), got.size() * sizeof(float)), 0) << names[k] << " (dynamic)";
    }
    Ref ref = Reference(d.x, d.w, d.b, 37, 1e-5, &d.dy);
    double tol = dtype == DType::kF32 ? 1e-5 : 8e-3;
    ExpectNear(single[4], ref.dw, tol, "dw");
    ExpectNear(single[5], ref.db, tol, "db");
    ExpectNear(single[3], ref.dx, tol, "dx");
  }
}

// No rows: the launchers write no dx and zero dw/db (x [0, 3]; the workspace rule asks for none).
TEST(LayerNorm, ZeroRows) {
  float dummy = 0;
  float dw[3] = {1, 1, 1}, db[3] = {1, 1, 1}, w[3] = {1, 2, 3};
  Tensor empty(&dummy, DType::kF32, Shape{0, 3}), stat(&dummy, DType::kF32, Shape{0});
  Tensor wt(w, DType::kF32, Shape{3});
  layernorm_fwd(empty, wt, wt, 1e-5, empty, stat, stat);
  EXPECT_EQ(ir::LayerNormBwdWorkspaceBytes(0, 3), 0u);
  Tensor dwt(dw, DType::kF32, Shape{3}), dbt(db, DType::kF32, Shape{3});
  layernorm_bwd(empty, empty, wt, stat, stat, empty, dwt, dbt, Tensor(nullptr, DType::kU8, Shape{0}));
  for (int j = 0; j < 3; ++j) {
    EXPECT_EQ(dw[j], 0.0f);
    EXPECT_EQ(db[j], 0.0f);
  }
}

TEST(LayerNorm, OutputNamesAndTypes) {
  ir::Graph g("names");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kBF16, Shape{2, 3, 4});
  auto* w = b.Input("w", DType::kBF16, Shape{4});
  auto* bias = b.Input("b", DType::kBF16, Shape{4});
  auto ln = ir::ops::LayerNorm(b, x, w, bias, 1e-5, "ln");
  EXPECT_EQ(ln.y->name, "ln");
  EXPECT_EQ(ln.mean->name, "ln.mean");
  EXPECT_EQ(ln.rstd->name, "ln.rstd");
  EXPECT_EQ(ln.y->dtype, DType::kBF16);
  EXPECT_EQ(ln.mean->dtype, DType::kF32);
  EXPECT_EQ(ln.rstd->shape, (Shape{2, 3}));
  EXPECT_DOUBLE_EQ(ln.y->producer->attrs.GetFloat("eps"), 1e-5);
  auto def = b.Emit("layernorm", {x, w, bias});
  EXPECT_DOUBLE_EQ(def[0]->producer->attrs.GetFloat("eps"), 1e-5);  // the default
}

void ExpectRejected(ir::Builder& b, const char* op, std::vector<ir::Value*> in, const char* needle,
                    ir::AttrMap attrs = {}) {
  auto r = b.TryEmit(op, std::move(in), std::move(attrs));
  ASSERT_FALSE(r.ok()) << op << " accepted; expected an error containing '" << needle << "'";
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
}

TEST(LayerNorm, RejectsBadInputs) {
  ir::Graph g("bad");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kF32, Shape{2, 4});
  auto* w = b.Input("w", DType::kF32, Shape{4});
  auto* w5 = b.Input("w5", DType::kF32, Shape{5});
  auto* w2d = b.Input("w2d", DType::kF32, Shape{1, 4});
  auto* wbf = b.Input("wbf", DType::kBF16, Shape{4});
  auto* xi = b.Input("xi", DType::kI32, Shape{2, 4});
  auto* x0 = b.Input("x0", DType::kF32, Shape{2, 0});
  auto* w0 = b.Input("w0", DType::kF32, Shape{0});
  auto* s = b.Input("s", DType::kF32, Shape{});
  ExpectRejected(b, "layernorm", {x, w5, w}, "(w)");
  ExpectRejected(b, "layernorm", {x, w2d, w}, "must be [4]");
  ExpectRejected(b, "layernorm", {x, w, w5}, "(b)");
  ExpectRejected(b, "layernorm", {x, wbf, w}, "(w)");
  ExpectRejected(b, "layernorm", {xi, w, w}, "(x)");
  ExpectRejected(b, "layernorm", {x0, w0, w0}, "last (normalized) dim > 0");
  ExpectRejected(b, "layernorm", {s, w, w}, "rank >= 1");
  ExpectRejected(b, "layernorm", {x, w, w}, "eps", {{"eps", -1.0}});

  auto ln = ir::ops::LayerNorm(b, x, w, w, 1e-5);
  auto* mean_bf = b.Input("mean_bf", DType::kBF16, Shape{2});
  auto* mean3 = b.Input("mean3", DType::kF32, Shape{3});
  auto* dy5 = b.Input("dy5", DType::kF32, Shape{2, 5});
  ExpectRejected(b, "layernorm_bwd", {x, x, w, mean_bf, ln.rstd}, "(mean)");
  ExpectRejected(b, "layernorm_bwd", {x, x, w, ln.mean, mean3}, "(rstd)");
  ExpectRejected(b, "layernorm_bwd", {dy5, x, w, ln.mean, ln.rstd}, "(dy)");
  ExpectRejected(b, "layernorm_bwd", {x, x, w5, ln.mean, ln.rstd}, "(w)");
  EXPECT_TRUE(b.TryEmit("layernorm_bwd", {x, x, w, ln.mean, ln.rstd}).ok());
}

TEST(LayerNorm, CostAndWorkspace) {
  ir::Graph g("cost");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kF32, Shape{4, 8});
  auto* w = b.Input("w", DType::kF32, Shape{8});
  auto* bias = b.Input("b", DType::kF32, Shape{8});
  auto ln = ir::ops::LayerNorm(b, x, w, bias, 1e-5);
  ir::Cost c = ir::NodeCost(*ln.y->producer);
  EXPECT_DOUBLE_EQ(c.flops, 8.0 * 32);
  EXPECT_DOUBLE_EQ(c.bytes_read, (32 + 8 + 8) * 4.0);
  EXPECT_DOUBLE_EQ(c.bytes_written, (32 + 4 + 4) * 4.0);
  auto grads = b.Emit("layernorm_bwd", {x, x, w, ln.mean, ln.rstd});
  ir::Cost cb = ir::NodeCost(*grads[0]->producer);
  EXPECT_DOUBLE_EQ(cb.flops, 13.0 * 32);
  EXPECT_DOUBLE_EQ(cb.bytes_read, (32 + 32 + 8 + 4 + 4) * 4.0);
  EXPECT_DOUBLE_EQ(cb.bytes_written, (32 + 8 + 8) * 4.0);
  // 4 rows -> 1 chunk; two f64 partials per column, rounded up to the 256-byte alignment.
  EXPECT_EQ(ir::NodeWorkspace(*grads[0]->producer), 256u);
  EXPECT_EQ(ir::LayerNormBwdChunks(0), 0);
  EXPECT_EQ(ir::LayerNormBwdChunks(1), 1);
  EXPECT_EQ(ir::LayerNormBwdChunks(1000), 125);
  EXPECT_EQ(ir::LayerNormBwdChunks(1 << 20), 128);
  EXPECT_EQ(ir::LayerNormBwdWorkspaceBytes(1000, 37), AlignedBytes(125 * 37 * 16));
}

}  // namespace
}  // namespace zt
