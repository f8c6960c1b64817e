// RMSNorm family: forward values and rstd against a naive f64 reference (f32, bf16, f16 storage),
// rmsnorm_bwd values against the f64 Jacobian, gradients of x and w by finite differences, dw
// bit-identical for any thread count, shape rules and cost.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>
#include <cstring>

#include "ir/ops/rmsnorm.h"
#include "kernels/cpu/rmsnorm.h"
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
  std::vector<double> y, rstd, dx, dw;
};

// Naive f64 rmsnorm of rows of length c; with dy, also the gradients through the explicit
// Jacobian dy_j/dx_i = w_j rstd (delta_ij - xhat_i xhat_j / c), xhat = x rstd.
Ref Reference(const std::vector<float>& x, const std::vector<float>& w, int64_t c, double eps,
              const std::vector<float>* dy = nullptr) {
  int64_t rows = static_cast<int64_t>(x.size()) / c;
  Ref r;
  r.y.resize(x.size());
  r.rstd.resize(rows);
  r.dx.assign(x.size(), 0.0);
  r.dw.assign(c, 0.0);
  for (int64_t i = 0; i < rows; ++i) {
    const float* xr = x.data() + i * c;
    double ms = 0;
    for (int64_t j = 0; j < c; ++j) ms += static_cast<double>(xr[j]) * xr[j];
    double rstd = 1.0 / std::sqrt(ms / c + eps);
    r.rstd[i] = rstd;
    std::vector<double> xhat(c);
    for (int64_t j = 0; j < c; ++j) {
      xhat[j] = xr[j] * rstd;
      r.y[i * c + j] = xhat[j] * w[j];
    }
    if (dy == nullptr) continue;
    const float* dyr = dy->data() + i * c;
    for (int64_t k = 0; k < c; ++k) {
      double acc = 0;
      for (int64_t j = 0; j < c; ++j) acc += dyr[j] * w[j] * rstd * ((j == k ? 1.0 : 0.0) - xhat[k] * xhat[j] / c);
      r.dx[i * c + k] = acc;
    }
    for (int64_t j = 0; j < c; ++j) r.dw[j] += dyr[j] * xhat[j];
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

// rmsnorm (named "rn") and, from a separate dy input, rmsnorm_bwd ("g").
std::unique_ptr<ir::Graph> ForwardBackwardGraph(const Shape& xs, DType dtype, double eps) {
  auto g = std::make_unique<ir::Graph>("rn");
  ir::Builder b(g.get());
  auto* x = b.Input("x", dtype, xs);
  auto* w = b.Input("w", dtype, Shape{xs[-1]});
  auto* dy = b.Input("dy", dtype, xs);
  auto rn = ir::ops::RmsNorm(b, x, w, eps, "rn");
  auto grads = b.Emit("rmsnorm_bwd", {dy, x, w, rn.rstd}, {}, "g");
  g->outputs() = {rn.y, rn.rstd, grads[0], grads[1]};
  return g;
}

struct Data {
  std::vector<float> x, w, dy;
};

Data MakeData(const Shape& xs, DType dtype, uint64_t seed) {
  return {RoundTo(dtype, RandomUniform(xs.numel(), seed, -2.0f, 3.0f)),
          RoundTo(dtype, RandomUniform(xs[-1], seed + 1, 0.5f, 1.5f)),
          RoundTo(dtype, RandomUniform(xs.numel(), seed + 2))};
}

void SetData(GraphRunner& r, const Data& d) {
  r.Set("x", d.x);
  r.Set("w", d.w);
  r.Set("dy", d.dy);
}

const std::vector<std::vector<int64_t>> kShapes = {
    {1}, {7}, {3, 1}, {1, 7}, {4, 7}, {5, 8}, {2, 3, 13}, {2, 2, 33}, {1, 1, 1}, {3, 64}, {9, 100},
};

class RmsNormShapes : public ::testing::TestWithParam<std::vector<int64_t>> {};

// Tolerances (relative, |got - want| <= tol (1 + |want|)): f32 1e-5; bf16 8e-3 and f16 1e-3 on
// y, dx, dw (one rounding to 2^-9 resp. 2^-12 relative, plus f32 error); rstd is f32 for every
// storage type (exact inputs), so 1e-5.
void CheckForwardBackward(const Shape& xs, DType dtype, double tol) {
  const double eps = 1e-6;
  GraphRunner r(ForwardBackwardGraph(xs, dtype, eps));
  Data d = MakeData(xs, dtype, 23);
  SetData(r, d);
  r.Run();
  Ref ref = Reference(d.x, d.w, xs[-1], eps, &d.dy);
  ExpectNear(r.Get("rn"), ref.y, tol, "y");
  ExpectNear(r.Get("rn.rstd"), ref.rstd, 1e-5, "rstd");
  ExpectNear(r.Get("g"), ref.dx, tol, "dx");
  ExpectNear(r.Get("g.dw"), ref.dw, tol, "dw");
}

TEST_P(RmsNormShapes, F32) { CheckForwardBackward(Shape(GetParam()), DType::kF32, 1e-5); }
TEST_P(RmsNormShapes, Bf16) { CheckForwardBackward(Shape(GetParam()), DType::kBF16, 8e-3); }
TEST_P(RmsNormShapes, F16) { CheckForwardBackward(Shape(GetParam()), DType::kF16, 1e-3); }

TEST_P(RmsNormShapes, GradXW) {
  Shape xs(GetParam());
  GradCheck({Arg("x", xs), Arg("w", Shape{xs[-1]}, true, 0.5f, 1.5f)},
            [](ir::Builder& b, const std::vector<ir::Value*>& v) {
              return std::vector<ir::Value*>{ir::ops::RmsNorm(b, v[0], v[1], 1e-6).y};
            });
}

INSTANTIATE_TEST_SUITE_P(All, RmsNormShapes, ::testing::ValuesIn(kShapes),
                         [](const ::testing::TestParamInfo<std::vector<int64_t>>& i) {
                           std::string s = "s";
                           for (int64_t d : i.param) s += "_" + std::to_string(d);
                           return s;
                         });

TEST(RmsNorm, GradOfOneInput) {
  GradCheck({Arg("x", Shape{3, 5}, false), Arg("w", Shape{5})},
            [](ir::Builder& b, const std::vector<ir::Value*>& v) {
              return std::vector<ir::Value*>{ir::ops::RmsNorm(b, v[0], v[1], 1e-6).y};
            });
  GradCheck({Arg("x", Shape{2, 6}), Arg("w", Shape{6}, false)},
            [](ir::Builder& b, const std::vector<ir::Value*>& v) {
              return std::vector<ir::Value*>{ir::ops::RmsNorm(b, v[0], v[1], 1e-6).y};
            });
}

TEST(RmsNorm, EpsAttribute) {
  Shape xs{4, 3};
  GraphRunner r(ForwardBackwardGraph(xs, DType::kF32, 0.5));
  Data d = MakeData(xs, DType::kF32, 5);
  SetData(r, d);
  r.Run();
  Ref ref = Reference(d.x, d.w, 3, 0.5, &d.dy);
  ExpectNear(r.Get("rn.rstd"), ref.rstd, 1e-6, "rstd");
  ExpectNear(r.Get("g"), ref.dx, 1e-5, "dx");
  GradCheck({Arg("x", xs), Arg("w", Shape{3})}, [](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return std::vector<ir::Value*>{ir::ops::RmsNorm(b, v[0], v[1], 0.5).y};
  });
}

// dw is reduced over 1000 rows (many chunks): every output must be bit-identical for any thread
// count and equal to the single-threaded run.
TEST(RmsNorm, BitIdenticalForAnyThreadCount) {
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    Shape xs{10, 100, 37};
    GraphRunner r(ForwardBackwardGraph(xs, dtype, 1e-6));
    Data d = MakeData(xs, dtype, 77);
    SetData(r, d);
    const char* names[] = {"rn", "rn.rstd", "g", "g.dw"};
    int saved = omp_get_max_threads();
    std::vector<std::vector<float>> single;
    for (int threads : {1, 2, 3, 4, 7, 16, 1}) {
      omp_set_num_threads(threads);
      r.Run();
      for (int k = 0; k < 4; ++k) {
        std::vector<float> got = r.Get(names[k]);
        if (single.size() < 4) {
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
    GraphRunner dyn(ForwardBackwardGraph(xs, dtype, 1e-6), ExecMemoryMode::kDynamic);
    SetData(dyn, d);
    dyn.Run();
    for (int k = 0; k < 4; ++k) {
      std::vector<float> got = dyn.Get(names[k]);
      EXPECT_EQ(std::memcmp(got.data(), single[k].data(), got.size() * sizeof(float)), 0) << names[k] << " (dynamic)";
    }
    Ref ref = Reference(d.x, d.w, 37, 1e-6, &d.dy);
    double tol = dtype == DType::kF32 ? 1e-5 : 8e-3;
    ExpectNear(single[2], ref.dx, tol, "dx");
    ExpectNear(single[3], ref.dw, tol, "dw");
  }
}

// No rows: no dx, zero dw (x [0, 3]; the workspace rule asks for none).
TEST(RmsNorm, ZeroRows) {
  float dummy = 0;
  float dw[3] = {1, 1, 1}, w[3] = {1, 2, 3};
  Tensor empty(&dummy, DType::kF32, Shape{0, 3}), stat(&dummy, DType::kF32, Shape{0});
  Tensor wt(w, DType::kF32, Shape{3});
  rmsnorm_fwd(empty, wt, 1e-6, empty, stat);
  EXPECT_EQ(ir::RmsNormBwdWorkspaceBytes(0, 3), 0u);
  rmsnorm_bwd(empty, empty, wt, stat, empty, Tensor(dw, DType::kF32, Shape{3}), Tensor(nullptr, DType::kU8, Shape{0}));
  for (int j = 0; j < 3; ++j) EXPECT_EQ(dw[j], 0.0f);
}

TEST(RmsNorm, OutputNamesAndTypes) {
  ir::Graph g("names");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kF16, Shape{2, 3, 4});
  auto* w = b.Input("w", DType::kF16, Shape{4});
  auto rn = ir::ops::RmsNorm(b, x, w, 1e-6, "rn");
  EXPECT_EQ(rn.y->name, "rn");
  EXPECT_EQ(rn.rstd->name, "rn.rstd");
  EXPECT_EQ(rn.y->dtype, DType::kF16);
  EXPECT_EQ(rn.rstd->dtype, DType::kF32);
  EXPECT_EQ(rn.rstd->shape, (Shape{2, 3}));
  auto def = b.Emit("rmsnorm", {x, w});
  EXPECT_DOUBLE_EQ(def[0]->producer->attrs.GetFloat("eps"), 1e-6);  // the default
}

void ExpectRejected(ir::Builder& b, const char* op, std::vector<ir::Value*> in, const char* needle,
                    ir::AttrMap attrs = {}) {
  auto r = b.TryEmit(op, std::move(in), std::move(attrs));
  ASSERT_FALSE(r.ok()) << op << " accepted; expected an error containing '" << needle << "'";
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
}

TEST(RmsNorm, RejectsBadInputs) {
  ir::Graph g("bad");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kF32, Shape{2, 4});
  auto* w = b.Input("w", DType::kF32, Shape{4});
  auto* w5 = b.Input("w5", DType::kF32, Shape{5});
  auto* w2d = b.Input("w2d", DType::kF32, Shape{1, 4});
  auto* wbf = b.Input("wbf", DType::kBF16, Shape{4});
  auto* xi = b.Input("xi", DType::kI64, Shape{2, 4});
  auto* x0 = b.Input("x0", DType::kF32, Shape{2, 0});
  auto* w0 = b.Input("w0", DType::kF32, Shape{0});
  auto* s = b.Input("s", DType::kF32, Shape{});
  ExpectRejected(b, "rmsnorm", {x, w5}, "(w)");
  ExpectRejected(b, "rmsnorm", {x, w2d}, "must be [4]");
  ExpectRejected(b, "rmsnorm", {x, wbf}, "(w)");
  ExpectRejected(b, "rmsnorm", {xi, w}, "(x)");
  ExpectRejected(b, "rmsnorm", {x0, w0}, "last (normalized) dim > 0");
  ExpectRejected(b, "rmsnorm", {s, w}, "rank >= 1");
  ExpectRejected(b, "rmsnorm", {x, w}, "eps", {{"eps", -1e-3}});

  auto rn = ir::ops::RmsNorm(b, x, w, 1e-6);
  auto* rstd_bf = b.Input("rstd_bf", DType::kBF16, Shape{2});
  auto* rstd3 = b.Input("rstd3", DType::kF32, Shape{2, 1});
  auto* dybf = b.Input("dybf", DType::kBF16, Shape{2, 4});
  ExpectRejected(b, "rmsnorm_bwd", {x, x, w, rstd_bf}, "(rstd)");
  ExpectRejected(b, "rmsnorm_bwd", {x, x, w, rstd3}, "(rstd)");
  ExpectRejected(b, "rmsnorm_bwd", {dybf, x, w, rn.rstd}, "(dy)");
  ExpectRejected(b, "rmsnorm_bwd", {x, x, w5, rn.rstd}, "(w)");
  EXPECT_TRUE(b.TryEmit("rmsnorm_bwd", {x, x, w, rn.rstd}).ok());
}

TEST(RmsNorm, CostAndWorkspace) {
  ir::Graph g("cost");
  ir::Builder b(&g);
  auto* x = b.Input("x", DType::kBF16, Shape{2, 3, 8});
  auto* w = b.Input("w", DType::kBF16, Shape{8});
  auto rn = ir::ops::RmsNorm(b, x, w, 1e-6);
  ir::Cost c = ir::NodeCost(*rn.y->producer);
  EXPECT_DOUBLE_EQ(c.flops, 4.0 * 48);
  EXPECT_DOUBLE_EQ(c.bytes_read, (48 + 8) * 2.0);
  EXPECT_DOUBLE_EQ(c.bytes_written, 48 * 2.0 + 6 * 4.0);
  auto grads = b.Emit("rmsnorm_bwd", {x, x, w, rn.rstd});
  ir::Cost cb = ir::NodeCost(*grads[0]->producer);
  EXPECT_DOUBLE_EQ(cb.flops, 9.0 * 48);
  EXPECT_DOUBLE_EQ(cb.bytes_read, (48 + 48 + 8) * 2.0 + 6 * 4.0);
  EXPECT_DOUBLE_EQ(cb.bytes_written, (48 + 8) * 2.0);
  EXPECT_EQ(ir::NodeWorkspace(*grads[0]->producer), 256u);  // 1 chunk x 8 f64, aligned
  EXPECT_EQ(ir::RmsNormBwdChunks(1000), 125);
  EXPECT_EQ(ir::RmsNormBwdChunks(1 << 20), 128);
  EXPECT_EQ(ir::RmsNormBwdWorkspaceBytes(1000, 37), AlignedBytes(125 * 37 * 8));
}

}  // namespace
}  // namespace zt
