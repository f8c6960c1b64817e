// Embedding: forward against a gather written here (f32/bf16/f16 storage, i32/i64 ids, edge
// shapes), backward scatter-add against an independent double sum (exact with repeated ids),
// determinism across thread counts, finite-difference gradcheck of the table (and of
// embedding_bwd's dout), shape-rule rejections, costs, and CHECK-failure on out-of-range ids.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>

#include "ir/autodiff.h"
#include "ir/ops/elementwise.h"
#include "ir/ops/embedding.h"
#include "kernels/cpu/embedding.h"
#include "support/gradcheck.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::GradCheck;
using testing::GraphRunner;
using testing::RandomInts;
using testing::RandomUniform;

struct Case {
  std::vector<int64_t> ids;  // ids shape
  int64_t v, c;              // table [v, c]
};

const std::vector<Case> kCases = {
    {{5}, 7, 3},        {{2, 3}, 11, 4}, {{1}, 1, 1},      {{1, 1}, 1, 5},  {{3, 1, 4}, 37, 13},
    {{4, 9}, 5, 300},   {{0}, 3, 2},     {{}, 4, 6},       {{64}, 2, 1},
};

// Readable parameter names in failure messages.
void PrintTo(const Case& k, std::ostream* os) {
  *os << "ids" << Shape(k.ids) << " table[" << k.v << "," << k.c << "]";
}

std::string CaseName(const ::testing::TestParamInfo<Case>& i) { return "case" + std::to_string(i.index); }

// Reference gather: out[p][j] = table[ids[p]][j].
std::vector<float> Gather(const std::vector<int64_t>& ids, const std::vector<float>& table, int64_t c) {
  std::vector<float> out;
  for (int64_t id : ids)
    for (int64_t j = 0; j < c; ++j) out.push_back(table[id * c + j]);
  return out;
}

// Reference scatter-add in double: dt[ids[p]][j] += dout[p][j].
std::vector<double> ScatterAdd(const std::vector<int64_t>& ids, const std::vector<float>& dout, int64_t v, int64_t c) {
  std::vector<double> dt(v * c, 0.0);
  for (size_t p = 0; p < ids.size(); ++p)
    for (int64_t j = 0; j < c; ++j) dt[ids[p] * c + j] += dout[p * c + j];
  return dt;
}

class EmbeddingCase : public ::testing::TestWithParam<Case> {};

void CheckForward(const Case& k, DType dtype, DType id_dtype) {
  auto g = std::make_unique<ir::Graph>("emb");
  ir::Builder b(g.get());
  auto* ids = b.Input("ids", id_dtype, Shape(k.ids));
  auto* table = b.Input("table", dtype, Shape{k.v, k.c});
  auto* out = ir::ops::Embedding(b, ids, table, "out");
  std::vector<int64_t> expect_shape = k.ids;
  expect_shape.push_back(k.c);
  ASSERT_EQ(out->shape, Shape(expect_shape));
  ASSERT_EQ(out->dtype, dtype);
  g->outputs() = {out};
  GraphRunner r(std::move(g));
  auto idv = RandomInts(Shape(k.ids).numel(), 21, 0, k.v);
  auto tv = testing::RoundTo(dtype, RandomUniform(k.v * k.c, 22));
  r.SetInts("ids", idv);
  r.Set("table", tv);
  r.Run();
  // A gather copies storage: exact in every dtype (tolerance 0).
  EXPECT_EQ(r.Get("out"), Gather(idv, tv, k.c));
}

TEST_P(EmbeddingCase, ForwardF32) { CheckForward(GetParam(), DType::kF32, DType::kI32); }
TEST_P(EmbeddingCase, ForwardF32I64) { CheckForward(GetParam(), DType::kF32, DType::kI64); }
TEST_P(EmbeddingCase, ForwardBf16) { CheckForward(GetParam(), DType::kBF16, DType::kI64); }
TEST_P(EmbeddingCase, ForwardF16) { CheckForward(GetParam(), DType::kF16, DType::kI32); }

// embedding_bwd against the double scatter-add. With small integer dout every partial sum is
// exact in f32, bf16 and f16, so the comparison is exact; with random dout the f32 accumulation is
// within 1e-5 relative (bf16/f16: one final rounding of the f32 sum, 2^-8 / 2^-11 relative).
void CheckBackward(const Case& k, DType dtype, bool integer_dout, double tol) {
  auto g = std::make_unique<ir::Graph>("emb_bwd");
  ir::Builder b(g.get());
  std::vector<int64_t> dshape = k.ids;
  dshape.push_back(k.c);
  auto* ids = b.Input("ids", DType::kI64, Shape(k.ids));
  auto* dout = b.Input("dout", dtype, Shape(dshape));
  auto* dt = ir::ops::EmbeddingBwd(b, ids, dout, k.v, "dtable");
  ASSERT_EQ(dt->shape, (Shape{k.v, k.c}));
  g->outputs() = {dt};
  GraphRunner r(std::move(g));
  int64_t n = Shape(k.ids).numel();
  auto idv = RandomInts(n, 31, 0, k.v);  // many repeats when n > v
  std::vector<float> dv;
  if (integer_dout) {
    for (int64_t x : RandomInts(n * k.c, 32, -4, 5)) dv.push_back(static_cast<float>(x));
  } else {
    dv = testing::RoundTo(dtype, RandomUniform(n * k.c, 32));
  }
  r.SetInts("ids", idv);
  r.Set("dout", dv);
  // Garbage in the output first: the kernel must zero rows no id points at.
  r.Set("dtable", std::vector<float>(k.v * k.c, 123.0f));
  r.Run();
  auto got = r.Get("dtable");
  auto ref = ScatterAdd(idv, dv, k.v, k.c);
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    if (integer_dout) EXPECT_EQ(got[i], ref[i]) << i;
    else EXPECT_NEAR(got[i], ref[i], tol * (1 + std::fabs(ref[i]))) << i;
  }
}

TEST_P(EmbeddingCase, BackwardExactF32) { CheckBackward(GetParam(), DType::kF32, true, 0); }
TEST_P(EmbeddingCase, BackwardExactBf16) { CheckBackward(GetParam(), DType::kBF16, true, 0); }
TEST_P(EmbeddingCase, BackwardExactF16) { CheckBackward(GetParam(), DType::kF16, true, 0); }
TEST_P(EmbeddingCase, BackwardRandomF32) { CheckBackward(GetParam(), DType::kF32, false, 1e-5); }
TEST_P(EmbeddingCase, BackwardRandomBf16) { CheckBackward(GetParam(), DType::kBF16, false, 8e-3); }
TEST_P(EmbeddingCase, BackwardRandomF16) { CheckBackward(GetParam(), DType::kF16, false, 1e-3); }

TEST_P(EmbeddingCase, GradCheckTable) {
  const Case k = GetParam();
  std::vector<testing::GradInput> in = {
      {"ids", Shape(k.ids), DType::kI32, false, -1, 1, k.v},
      {"table", Shape{k.v, k.c}},
  };
  GradCheck(in, [](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return std::vector<ir::Value*>{ir::ops::Embedding(b, v[0], v[1])};
  });
}

TEST_P(EmbeddingCase, GradCheckBwdDout) {
  const Case k = GetParam();
  std::vector<int64_t> dshape = k.ids;
  dshape.push_back(k.c);
  std::vector<testing::GradInput> in = {
      {"ids", Shape(k.ids), DType::kI64, false, -1, 1, k.v},
      {"dout", Shape(dshape)},
  };
  GradCheck(in, [k](ir::Builder& b, const std::vector<ir::Value*>& v) {
    return std::vector<ir::Value*>{ir::ops::EmbeddingBwd(b, v[0], v[1], k.v)};
  });
}

INSTANTIATE_TEST_SUITE_P(All, EmbeddingCase, ::testing::ValuesIn(kCases), CaseName);

// Repeated ids through autodiff: the table's gradient is the exact sum of the rows' cotangents.
TEST(Embedding, AutodiffAccumulatesRepeatedIds) {
  auto g = std::make_unique<ir::Graph>("emb_ad");
  ir::Builder b(g.get());
  auto* ids = b.Input("ids", DType::kI32, Shape{2, 4});
  auto* table = b.Param("table", DType::kF32, Shape{3, 2});
  auto* w = b.Input("w", DType::kF32, Shape{2, 4, 2});
  auto* out = ir::ops::Embedding(b, ids, table, "out");
  auto* loss = ir::ops::ReduceSumTo(b, ir::ops::Mul(b, out, w), Shape{}, "loss");
  ASSERT_TRUE(ir::AppendBackward(*g, loss, {table}).ok());
  GraphRunner r(std::move(g));
  std::vector<int64_t> idv = {2, 0, 2, 2, 0, 2, 1, 2};  // row 2 five times, row 0 twice, row 1 once
  std::vector<float> wv = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  r.SetInts("ids", idv);
  r.Set("w", wv);
  r.Set("table", RandomUniform(6, 5));
  r.Run();
  auto grad = r.Get(r.graph().GradOf(r.value("table")));
  std::vector<float> expect = {3 + 9, 4 + 10, 13, 14, 1 + 5 + 7 + 11 + 15, 2 + 6 + 8 + 12 + 16};
  EXPECT_EQ(grad, expect);
}

// The backward result is bit-identical whatever the thread count (no unordered accumulation), and
// matches the reference when the vocabulary rows are really split over threads (V >> grain).
TEST(Embedding, BackwardIndependentOfThreadCount) {
  const int64_t n = 4096, v = 1000, c = 70;
  std::vector<int32_t> ids(n);
  auto ri = RandomInts(n, 41, 0, v);
  for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(ri[i]);
  auto dv = RandomUniform(n * c, 42);
  size_t ws_bytes = ir::EmbeddingBwdWorkspaceBytes(n, v);
  std::vector<int64_t> ws(ws_bytes / 8);
  Tensor tid(ids.data(), DType::kI32, Shape{n});
  Tensor tdout(dv.data(), DType::kF32, Shape{n, c});
  Tensor tws(ws.data(), DType::kU8, Shape{static_cast<int64_t>(ws_bytes)});
  int saved = omp_get_max_threads();
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 3, 7}) {
    omp_set_num_threads(threads);
    std::vector<float> dt(v * c, -1.0f);
    embedding_bwd(tid, tdout, Tensor(dt.data(), DType::kF32, Shape{v, c}), tws);
    results.push_back(dt);
  }
  omp_set_num_threads(saved);
  for (size_t i = 1; i < results.size(); ++i)
    EXPECT_EQ(std::memcmp(results[0].data(), results[i].data(), results[0].size() * 4), 0) << i;
  auto ref = ScatterAdd(ri, dv, v, c);
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(results.back()[i], ref[i], 1e-5 * (1 + std::fabs(ref[i]))) << i;
}

TEST(Embedding, RejectsBadInputs) {
  ir::Graph g("bad");
  ir::Builder b(&g);
  auto* ids = b.Input("ids", DType::kI32, Shape{2, 3});
  auto* fids = b.Input("fids", DType::kF32, Shape{2, 3});
  auto* table = b.Input("table", DType::kF32, Shape{5, 4});
  auto* itable = b.Input("itable", DType::kI32, Shape{5, 4});
  auto* table3 = b.Input("table3", DType::kF32, Shape{5, 4, 2});
  auto expect_error = [&](std::string_view op, std::vector<ir::Value*> in, ir::AttrMap attrs, const std::string& word) {
    auto r = b.TryEmit(op, std::move(in), std::move(attrs));
    ASSERT_FALSE(r.ok()) << word;
    EXPECT_NE(r.status().message().find(word), std::string::npos) << r.status().message();
  };
  expect_error("embedding", {fids, table}, {}, "(ids)");
  expect_error("embedding", {ids, itable}, {}, "(table)");
  expect_error("embedding", {ids, table3}, {}, "(table)");
  expect_error("embedding", {table, ids}, {}, "(ids)");  // swapped operands
  auto* dout = b.Input("dout", DType::kF32, Shape{2, 3, 4});
  auto* dout_bad = b.Input("dout_bad", DType::kF32, Shape{2, 4, 4});
  auto* dout_rank = b.Input("dout_rank", DType::kF32, Shape{6, 4});
  expect_error("embedding_bwd", {fids, dout}, {{"num_embeddings", int64_t{5}}}, "(ids)");
  expect_error("embedding_bwd", {ids, dout_bad}, {{"num_embeddings", int64_t{5}}}, "(dout)");
  expect_error("embedding_bwd", {ids, dout_rank}, {{"num_embeddings", int64_t{5}}}, "(dout)");
  expect_error("embedding_bwd", {ids, dout}, {{"num_embeddings", int64_t{-1}}}, "num_embeddings");
  expect_error("embedding_bwd", {ids, dout}, {}, "num_embeddings");  // required attribute
  EXPECT_TRUE(b.TryEmit("embedding_bwd", {ids, dout}, {{"num_embeddings", int64_t{5}}}).ok());
}

TEST(Embedding, Cost) {
  ir::Graph g("cost");
  ir::Builder b(&g);
  auto* ids = b.Input("ids", DType::kI64, Shape{2, 3});
  auto* table = b.Input("table", DType::kBF16, Shape{100, 8});
  auto* out = ir::ops::Embedding(b, ids, table);
  ir::Cost c = ir::NodeCost(*out->producer);
  EXPECT_DOUBLE_EQ(c.flops, 0);
  EXPECT_DOUBLE_EQ(c.bytes_read, 6 * 8.0 + 6 * 8 * 2.0);  // ids + the gathered rows only
  EXPECT_DOUBLE_EQ(c.bytes_written, 6 * 8 * 2.0);
  auto* dout = b.Input("dout", DType::kBF16, Shape{2, 3, 8});
  auto* dt = ir::ops::EmbeddingBwd(b, ids, dout, 100);
  ir::Cost cb = ir::NodeCost(*dt->producer);
  EXPECT_DOUBLE_EQ(cb.flops, 48);  // numel(dout)
  EXPECT_DOUBLE_EQ(cb.bytes_read, 6 * 8.0 + 48 * 2.0);
  EXPECT_DOUBLE_EQ(cb.bytes_written, 100 * 8 * 2.0);
  EXPECT_EQ(ir::NodeWorkspace(*dt->producer), ir::EmbeddingBwdWorkspaceBytes(6, 100));
  EXPECT_EQ(ir::EmbeddingBwdWorkspaceBytes(6, 100), 1024u + 256u);  // 101 and 6 int64s, aligned
  EXPECT_EQ(ir::NodeWorkspace(*out->producer), 0u);
}

class EmbeddingDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(EmbeddingDeathTest, ForwardIdOutOfRange) {
  std::vector<int64_t> ids = {0, 3, 7, 1};
  std::vector<float> table(5 * 2, 1.0f), out(4 * 2);
  Tensor tid(ids.data(), DType::kI64, Shape{4});
  Tensor tt(table.data(), DType::kF32, Shape{5, 2});
  Tensor to(out.data(), DType::kF32, Shape{4, 2});
  EXPECT_DEATH(embedding_fwd(tid, tt, to), "id 7 at position 2 is outside \\[0, V = 5\\)");
  ids[2] = -1;
  EXPECT_DEATH(embedding_fwd(tid, tt, to), "id -1 at position 2 is outside \\[0, V = 5\\)");
  ids[2] = 4;  // in range: runs
  embedding_fwd(tid, tt, to);
  EXPECT_EQ(out[4], 1.0f);
}

TEST_F(EmbeddingDeathTest, BackwardIdOutOfRange) {
  std::vector<int32_t> ids = {0, 5};
  std::vector<float> dout(2 * 3, 1.0f), dt(5 * 3);
  std::vector<int64_t> ws(64);
  Tensor tid(ids.data(), DType::kI32, Shape{2});
  EXPECT_DEATH(embedding_bwd(tid, Tensor(dout.data(), DType::kF32, Shape{2, 3}),
                             Tensor(dt.data(), DType::kF32, Shape{5, 3}),
                             Tensor(ws.data(), DType::kU8, Shape{512})),
               "id 5 at position 1 is outside \\[0, V = 5\\)");
}

// Through the executor too: bad ids in a graph abort with the same message.
TEST_F(EmbeddingDeathTest, GraphIdOutOfRange) {
  auto g = std::make_unique<ir::Graph>("emb");
  ir::Builder b(g.get());
  auto* ids = b.Input("ids", DType::kI32, Shape{3});
  auto* table = b.Input("table", DType::kF32, Shape{4, 2});
  g->outputs() = {ir::ops::Embedding(b, ids, table, "out")};
  GraphRunner r(std::move(g));
  r.SetInts("ids", {1, 2, 40000});
  r.Set("table", RandomUniform(8, 3));
  EXPECT_DEATH(r.Run(), "id 40000 at position 2 is outside \\[0, V = 4\\)");
}

}  // namespace
}  // namespace zt
