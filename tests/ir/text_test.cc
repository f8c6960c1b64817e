// IR text: PrintGraph -> ParseGraph -> PrintGraph gives identical text (multi-output nodes, nodes
// without outputs, attributes of every type with awkward values, phase/stream/deps, planned
// offsets and categories, names that need quotes, a graph after AppendBackward + AppendOptimizerStep),
// and parse errors name the line and what was wrong.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ir/autodiff.h"
#include "ir/builder.h"
#include "ir/ops/elementwise.h"
#include "ir/ops/matmul.h"
#include "ir/ops/views.h"
#include "ir/optimizer.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "ir/test_ops.h"

namespace zt::ir {
namespace {

// Round trip: the text of the parsed graph equals the original text, the parsed graph verifies,
// and a second round trip is a fixpoint. Returns the parsed graph for further checks.
std::unique_ptr<Graph> RoundTrip(const Graph& g) {
  Status v = Verify(g);
  EXPECT_TRUE(v.ok()) << v.ToString();
  std::string text = PrintGraph(g);
  auto parsed = ParseGraph(text);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString() << "\n" << text;
  if (!parsed.ok()) return nullptr;
  std::string again = PrintGraph(**parsed);
  EXPECT_EQ(again, text);
  Status pv = Verify(**parsed);
  EXPECT_TRUE(pv.ok()) << pv.ToString() << "\n" << again;
  auto twice = ParseGraph(again);
  EXPECT_TRUE(twice.ok());
  if (twice.ok()) {
    EXPECT_EQ(PrintGraph(**twice), text);
  }
  return std::move(*parsed);
}

TEST(IrText, AttributesOfEveryTypeAndAwkwardValues) {
  testing::RegisterTestOps();
  Graph g("attrs \"quoted\" \\ graph");
  Builder b(&g);
  Value* x = b.Input("x", DType::kF32, Shape{2, 3});
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> floats = {1e-05, 0.1, nan, inf, -inf, 3.0, -0.0, 1e300, 5e-324, -2.5, 1.0 / 3.0};
  std::vector<Node*> nodes;
  for (size_t k = 0; k < floats.size(); ++k) {
    b.Emit("test_attrs", {x},
           {{"i", static_cast<int64_t>(k) - 7},
            {"f", floats[k]},
            {"b", k % 2 == 0},
            {"s", std::string(k == 0 ? "say \"hi\" \\ then\nnew line, {braces} = %x // not a comment" : "")},
            {"ints", std::vector<int64_t>{-1, 0, static_cast<int64_t>(k), std::numeric_limits<int64_t>::min()}},
            {"dt", static_cast<DType>(k % kNumDTypes)}},
           "t" + std::to_string(k));
    nodes.push_back(b.last_node());
  }
  b.Emit("test_attrs", {x}, {{"i", std::numeric_limits<int64_t>::max()}}, "big");
  std::string text = PrintGraph(g);
  EXPECT_NE(text.find("%t0 : f32[2,3], %t0.aux : f32[] = test_attrs(%x) {b=true, dt=f32, f=1e-05, i=-7, "
                      "ints=[-1,0,0,-9223372036854775808], s=\"say \\\"hi\\\" \\\\ then\\nnew line"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("f=0.1,"), std::string::npos) << text;
  EXPECT_NE(text.find("f=nan,"), std::string::npos) << text;
  EXPECT_NE(text.find("f=inf,"), std::string::npos) << text;
  EXPECT_NE(text.find("f=-inf,"), std::string::npos) << text;
  EXPECT_NE(text.find("f=3.0,"), std::string::npos) << text;

  auto p = RoundTrip(g);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->name(), g.name());
  ASSERT_EQ(p->nodes().size(), g.nodes().size());
  for (size_t k = 0; k < floats.size(); ++k) {
    const AttrMap& a = p->nodes()[k]->attrs;
    EXPECT_EQ(a.GetInt("i"), static_cast<int64_t>(k) - 7);
    double f = a.GetFloat("f");
    if (std::isnan(floats[k])) {
      EXPECT_TRUE(std::isnan(f));
    } else {
      EXPECT_EQ(f, floats[k]) << k;  // exact: the printer writes the shortest round-tripping form
      EXPECT_EQ(std::signbit(f), std::signbit(floats[k])) << k;
    }
    EXPECT_EQ(a.GetBool("b"), k % 2 == 0);
    EXPECT_EQ(a.GetDType("dt"), static_cast<DType>(k % kNumDTypes));
    EXPECT_EQ(a.GetInts("ints")[3], std::numeric_limits<int64_t>::min());
    EXPECT_EQ(p->nodes()[k]->outputs.size(), 2u);
  }
  EXPECT_EQ(p->nodes()[0]->attrs.GetString("s"), nodes[0]->attrs.GetString("s"));
  EXPECT_EQ(p->nodes().back()->attrs.GetInt("i"), std::numeric_limits<int64_t>::max());
}

TEST(IrText, QuotedNamesPhasesStreamsDepsOffsetsCategories) {
  testing::RegisterTestOps();
  Graph g("g");
  Builder b(&g);
  Value* x = b.Input("x in\"put\\", DType::kF32, Shape{2, 3});
  Value* y = b.Input("y", DType::kF32, Shape{3});
  Value* w = b.Param("layer/0:w", DType::kBF16, Shape{4});
  Value* st = b.State("st-1.m", DType::kF32, Shape{4}, MemCategory::kCommBuffers);
  Value* st2 = b.State("opt", DType::kF32, Shape{1}, MemCategory::kOptimizerState);
  x->offset = 0;
  y->offset = 256;
  w->offset = 0;
  st->offset = 1024;
  Value* a = ops::Add(b, x, y, "sum with space");
  Value* c = ops::Scale(b, a, -0.25, "line\nbreak");
  b.set_phase(Phase::kBackward);
  b.set_stream(1);
  Value* d = ops::Mul(b, c, y, "2nd");
  Node* nd = b.last_node();
  b.set_phase(Phase::kOptimizer);
  b.set_stream(2);
  b.Emit("test_sink", {d, w, st, st2}, {{"tag", std::string("end")}});
  Node* sink = b.last_node();
  nd->deps = {g.nodes()[0].get(), g.nodes()[1].get()};
  sink->deps = {nd};
  a->offset = 512;
  c->offset = 0;
  c->category = MemCategory::kGradients;
  d->category = MemCategory::kWorkspace;
  d->offset = 123456789012;
  g.outputs() = {c, d};
  std::string text = PrintGraph(g);
  EXPECT_NE(text.find("input %\"x in\\\"put\\\\\" : f32[2,3] @0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("param %\"layer/0:w\" : bf16[4] @0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("state %st-1.m : f32[4] !comm_buffers @1024\n"), std::string::npos) << text;
  EXPECT_NE(text.find("state %opt : f32[1]\n"), std::string::npos) << text;
  EXPECT_NE(text.find(" : f32[2,3] !gradients @0 = scale("), std::string::npos) << text;
  EXPECT_NE(text.find("%2nd : f32[2,3] !workspace @123456789012 = mul("), std::string::npos) << text;
  EXPECT_NE(text.find("phase=backward stream=1 deps=[#0, #1]"), std::string::npos) << text;
  EXPECT_NE(text.find("  test_sink(%2nd, %\"layer/0:w\", %st-1.m, %opt) {tag=\"end\"} phase=optimizer stream=2 deps=[#2]\n"),
            std::string::npos)
      << text;

  auto p = RoundTrip(g);
  ASSERT_NE(p, nullptr);
  Value* pc = p->FindValue("line\nbreak");
  ASSERT_NE(pc, nullptr);
  EXPECT_EQ(pc->category, MemCategory::kGradients);
  EXPECT_EQ(pc->offset, 0);
  Value* px = p->FindValue("x in\"put\\");
  ASSERT_NE(px, nullptr);
  EXPECT_EQ(px->kind, ValueKind::kInput);
  EXPECT_EQ(p->FindValue("st-1.m")->category, MemCategory::kCommBuffers);
  EXPECT_EQ(p->FindValue("opt")->category, MemCategory::kOptimizerState);
  EXPECT_FALSE(p->FindValue("opt")->offset.has_value());
  const Node* pn = p->nodes()[2].get();
  EXPECT_EQ(pn->phase, Phase::kBackward);
  EXPECT_EQ(pn->stream, 1);
  ASSERT_EQ(pn->deps.size(), 2u);
  EXPECT_EQ(pn->deps[0], p->nodes()[0].get());
  EXPECT_EQ(pn->deps[1], p->nodes()[1].get());
  EXPECT_TRUE(p->nodes()[3]->outputs.empty());
  EXPECT_EQ(p->outputs().size(), 2u);
}

TEST(IrText, EmptyGraph) {
  Graph g("");
  auto p = RoundTrip(g);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(PrintGraph(g), "graph \"\" {\n}\n");
}

// A small MLP after autodiff and the optimizer: grads, loss, multi-output in-place adamw nodes.
std::unique_ptr<Graph> TrainingGraph() {
  auto g = std::make_unique<Graph>("mlp");
  Builder b(g.get());
  Value* x = b.Input("x", DType::kF32, Shape{4, 3});
  Value* w1 = b.Param("w1", DType::kF32, Shape{5, 3});
  Value* b1 = b.Param("b1", DType::kF32, Shape{5});
  Value* w2 = b.Param("w2", DType::kF32, Shape{2, 5});
  b.Param("unused", DType::kF32, Shape{3});
  Value* h = ops::Linear(b, x, w1, b1, "h");
  Value* h2 = ops::Mul(b, h, h, "h2");
  Value* y = ops::Linear(b, h2, w2, nullptr, "y");
  Value* r = ops::Reshape(b, y, Shape{8}, "r");
  Value* loss = ops::ReduceSumTo(b, ops::Scale(b, r, 0.5), Shape{}, "loss");
  ZT_CHECK_OK(AppendBackward(*g, loss, ParamsOf(*g)));
  AdamWOptions o;
  o.weight_decay = 0.1;
  o.eps = 1e-05;
  o.no_decay_for_vectors = true;
  ZT_CHECK_OK(AppendOptimizerStep(*g, {.adamw = o, .master_weights = false, .grad_accum = 2}));
  g->outputs() = {y};
  return g;
}

TEST(IrText, GraphAfterBackwardAndAdamW) {
  auto g = TrainingGraph();
  std::string text = PrintGraph(*g);
  EXPECT_NE(text.find("phase=backward"), std::string::npos);
  EXPECT_NE(text.find("phase=optimizer"), std::string::npos);
  EXPECT_NE(text.find("= adamw(%w1, "), std::string::npos) << text;
  EXPECT_NE(text.find("eps=1e-05"), std::string::npos) << text;
  EXPECT_NE(text.find("\n  loss %loss\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n  grad %unused = "), std::string::npos) << text;
  EXPECT_NE(text.find("!gradients"), std::string::npos) << text;
  auto p = RoundTrip(*g);
  ASSERT_NE(p, nullptr);
  ASSERT_NE(p->loss(), nullptr);
  EXPECT_EQ(p->loss()->name, "loss");
  ASSERT_EQ(p->grads().size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(p->grads()[i].first->name, g->grads()[i].first->name);
    EXPECT_EQ(p->grads()[i].second->name, g->grads()[i].second->name);
    EXPECT_EQ(p->grads()[i].second->category, g->grads()[i].second->category);
  }
  int adamw = 0;
  for (const auto& n : p->nodes()) {
    if (n->op->name != "adamw") continue;
    ++adamw;
    EXPECT_EQ(n->outputs.size(), 3u);
    EXPECT_EQ(n->phase, Phase::kOptimizer);
  }
  EXPECT_EQ(adamw, 4);
}

TEST(IrText, HandWrittenTextWithCommentsAndSpacing) {
  const char* text = R"(// a comment line
graph "hand" {   // trailing comment
  input %x : f32[2,3]
  input %y:f32[3]    !comm_buffers
  %s : f32[2,3] = add(%x,%y)
  %t : f32[2,3] @256 = scale( %s ) { alpha = +2 }
  output %t
})";
  auto p = ParseGraph(text);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_TRUE(Verify(**p).ok());
  EXPECT_EQ((*p)->FindValue("y")->category, MemCategory::kCommBuffers);
  EXPECT_EQ((*p)->nodes()[1]->attrs.GetFloat("alpha"), 2.0);
  EXPECT_EQ(PrintGraph(**p),
            "graph \"hand\" {\n"
            "  input %x : f32[2,3]\n"
            "  input %y : f32[3] !comm_buffers\n"
            "  %s : f32[2,3] = add(%x, %y)\n"
            "  %t : f32[2,3] @256 = scale(%s) {alpha=2.0}\n"
            "  output %t\n"
            "}\n");
}

struct BadText {
  const char* what;
  std::string text;
  int line;
  std::string message;
};

TEST(IrText, ParseErrorsNameTheLine) {
  const std::string head = "graph \"g\" {\n  input %x : f32[2]\n";  // lines 1-2
  const std::vector<BadText> cases = {
      {"unknown op", head + "  %y : f32[2] = frobnicate(%x)\n}\n", 3, "unknown op 'frobnicate'"},
      {"undefined value", head + "  %y : f32[2] = add(%x, %nope)\n}\n", 3, "%nope is not defined above"},
      {"bad dtype", "graph \"g\" {\n\n  input %x : f33[2]\n}\n", 3, "unknown dtype 'f33'"},
      {"unknown attribute", head + "  %y : f32[2] = scale(%x) {alpha=2.0, beta=1}\n}\n", 3,
       "op 'scale' has no attribute 'beta'"},
      {"missing closing brace", head + "  output %x\n", 4, "missing '}' at end of graph"},
      {"missing attribute brace", head + "  %y : f32[2] = scale(%x) {alpha=2.0\n  output %y\n}\n", 4, "expected ','"},
      {"attribute given twice", head + "  %y : f32[2] = scale(%x) {alpha=2.0, alpha=3.0}\n}\n", 3,
       "attribute 'alpha' given twice"},
      {"wrong attribute value type", head + "  %y : f32[2] = scale(%x) {alpha=\"two\"}\n}\n", 3, "expected a number"},
      {"int attribute not an int", head + "  %y : i32[2] = arange() {n=2.5}\n}\n", 3, "expected an integer"},
      {"bool attribute", head + "  %y : f32[2,2] = matmul(%x, %x) {trans_a=yes}\n}\n", 3, "expected true or false"},
      {"defined twice", head + "  %x : f32[2] = scale(%x) {alpha=1.0}\n}\n", 3, "%x is defined twice"},
      {"defined twice in one node", head + "  %a : f32[2], %a : f32[] = test_attrs(%x) {i=1}\n}\n", 3,
       "%a is defined twice"},
      {"unterminated string", "graph \"g {\n}\n", 1, "unterminated string"},
      {"unterminated name", head + "  output %\"x\n}\n", 3, "unterminated string"},
      {"deps to a missing node", head + "  %y : f32[2] = scale(%x) {alpha=1.0} deps=[#5]\n}\n", 3,
       "deps names node #5, which does not exist"},
      {"bad phase", head + "  %y : f32[2] = scale(%x) {alpha=1.0} phase=sideways\n}\n", 3, "unknown phase 'sideways'"},
      {"bad category", "graph \"g\" {\n  input %x : f32[2] !gpu_memory\n}\n", 2, "unknown memory category 'gpu_memory'"},
      {"negative dimension", "graph \"g\" {\n  param %w : f32[2,-3]\n}\n", 2, "negative dimension"},
      {"negative offset", "graph \"g\" {\n  param %w : f32[2] @-256\n}\n", 2, "negative offset"},
      {"unexpected character", head + "  $y\n}\n", 3, "unexpected character '$'"},
      {"text after the graph", head + "}\ngraph\n", 4, "text after the closing '}'"},
      {"graph name not quoted", "graph g {\n}\n", 1, "expected the graph name in quotes"},
      {"not a graph", "\n\nnetwork \"g\" {}\n", 3, "expected 'graph'"},
      {"missing colon", head + "  %y f32[2] = scale(%x) {alpha=1.0}\n}\n", 3, "expected ':'"},
      {"grad without '='", head + "  param %w : f32[2]\n  grad %w %x\n}\n", 4, "expected '='"},
  };
  testing::RegisterTestOps();
  for (const BadText& c : cases) {
    auto p = ParseGraph(c.text);
    ASSERT_FALSE(p.ok()) << c.what << " parsed:\n" << c.text;
    const std::string& m = p.status().message();
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_EQ(m.rfind("IR line " + std::to_string(c.line) + ": ", 0), 0u) << c.what << ": " << m;
    EXPECT_NE(m.find(c.message), std::string::npos) << c.what << ": " << m;
  }
}

TEST(IrText, ParsedTypeErrorsAreLeftToTheVerifier) {
  auto p = ParseGraph("graph \"g\" {\n  input %x : f32[2]\n  %y : f32[3] = scale(%x) {alpha=1.0}\n}\n");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  Status v = Verify(**p);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.message().find("node #0 'scale' -> %y: output %y is declared f32[3] but op 'scale' gives f32[2]"),
            std::string::npos)
      << v.ToString();
}

TEST(IrText, BareNames) {
  EXPECT_TRUE(IsBareName("h.0.ln_1"));
  EXPECT_TRUE(IsBareName("a-b_C9"));
  EXPECT_FALSE(IsBareName(""));
  EXPECT_FALSE(IsBareName("a b"));
  EXPECT_FALSE(IsBareName("a\"b"));
  EXPECT_FALSE(IsBareName("a/b"));
  EXPECT_FALSE(IsBareName("a%b"));
}

}  // namespace
}  // namespace zt::ir
