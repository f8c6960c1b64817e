// Verifier: each kind of malformed graph (built by mutating Node/Value fields directly, or by
// parsing text) is rejected with a message that names the node ("node #3 'add' -> %a") or the
// value concerned and says what is wrong. A well-formed graph verifies.
#include <gtest/gtest.h>

#include <functional>

#include "ir/builder.h"
#include "ir/ops/constant.h"
#include "ir/ops/elementwise.h"
#include "ir/ops/matmul.h"
#include "ir/ops/views.h"
#include "ir/ops/adamw.h"
#include "ir/test_ops.h"
#include "ir/text.h"
#include "ir/verifier.h"

namespace zt::ir {
namespace {

// x:[2,3], y:[3], w:param[3]
//   #0 a = add(x, y)   #1 b = mul(a, y)   #2 c = scale(b){alpha=2}      outputs: c
struct Base {
  std::unique_ptr<Graph> g = std::make_unique<Graph>("base");
  Value *x, *y, *w, *a, *b, *c;
  Node *na, *nb, *nc;
  Base() {
    Builder bl(g.get());
    x = bl.Input("x", DType::kF32, Shape{2, 3});
    y = bl.Input("y", DType::kF32, Shape{3});
    w = bl.Param("w", DType::kF32, Shape{3});
    a = ops::Add(bl, x, y, "a");
    na = bl.last_node();
    b = ops::Mul(bl, a, y, "b");
    nb = bl.last_node();
    c = ops::Scale(bl, b, 2.0, "c");
    nc = bl.last_node();
    g->outputs() = {c};
  }
};

// Expects Verify to fail with a message containing every one of `parts`.
void ExpectRejected(const Graph& g, const std::vector<std::string>& parts) {
  Status s = Verify(g);
  ASSERT_FALSE(s.ok()) << "verified, expected: " << parts[0] << "\n" << PrintGraph(g);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  for (const std::string& p : parts) EXPECT_NE(s.message().find(p), std::string::npos) << "want '" << p << "' in: " << s.message();
}

TEST(Verifier, WellFormedGraphVerifies) {
  Base t;
  Status s = Verify(*t.g);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(t.g->Describe(t.nb), "node #1 'mul' -> %b");
}

TEST(Verifier, UseBeforeDefinition) {
  Base t;
  t.g->MoveNode(t.nb, t.na);  // mul now runs before the add that defines its input
  ExpectRejected(*t.g, {"node #0 'mul' -> %b: uses %a before its definition by node #1 'add' -> %a"});
}

TEST(Verifier, UseOfLaterOutputAfterMoveToEnd) {
  Base t;
  t.g->MoveNode(t.na, nullptr);
  ExpectRejected(*t.g, {"node #0 'mul' -> %b: uses %a before its definition by node #2 'add'"});
}

TEST(Verifier, DanglingUseOfRemovedValue) {
  Base t;
  t.g->RemoveNode(t.na);
  ExpectRejected(*t.g, {"node #0 'mul' -> %b: input 0 %a is not in the graph", "removed value"});
}

TEST(Verifier, WrongDeclaredOutputShape) {
  Base t;
  t.b->shape = Shape{3};
  ExpectRejected(*t.g, {"node #1 'mul' -> %b: output %b is declared f32[3] but op 'mul' gives f32[2,3]"});
}

TEST(Verifier, WrongDeclaredOutputDType) {
  Base t;
  t.c->dtype = DType::kBF16;
  ExpectRejected(*t.g, {"node #2 'scale' -> %c: output %c is declared bf16[2,3] but op 'scale' gives f32[2,3]"});
}

TEST(Verifier, MissingRequiredAttribute) {
  Base t;
  t.nc->attrs = AttrMap{};
  ExpectRejected(*t.g, {"node #2 'scale' -> %c", "needs attribute 'alpha'"});
}

TEST(Verifier, MissingDefaultedAttribute) {
  Graph g("mm");
  Builder b(&g);
  Value* p = b.Input("p", DType::kF32, Shape{2, 3});
  Value* q = b.Input("q", DType::kF32, Shape{3, 4});
  ops::Matmul(b, p, q, false, false, nullptr, "pq");
  g.nodes()[0]->attrs = AttrMap{{"trans_b", false}};
  ExpectRejected(g, {"node #0 'matmul' -> %pq: attribute 'trans_a' is missing"});
}

TEST(Verifier, WrongAttributeType) {
  Base t;
  t.nc->attrs.Set("alpha", std::string("two"));
  ExpectRejected(*t.g, {"node #2 'scale' -> %c", "attribute 'alpha' of op 'scale' must be float, got string"});
}

// The builder accepts 2 for 2.0 (it converts); a node that holds an int where a float is declared
// must not verify, since kernels read the attribute as a float.
TEST(Verifier, IntStoredForFloatAttribute) {
  Base t;
  t.nc->attrs.Set("alpha", int64_t{2});
  ExpectRejected(*t.g, {"node #2 'scale' -> %c", "'alpha'", "float", "int"});
}

TEST(Verifier, UnknownAttribute) {
  Base t;
  t.nc->attrs.Set("beta", 1.0);
  ExpectRejected(*t.g, {"node #2 'scale' -> %c", "op 'scale' has no attribute 'beta'"});
}

TEST(Verifier, WrongInputCount) {
  Base t;
  t.nc->inputs.push_back(t.x);
  ExpectRejected(*t.g, {"node #2 'scale' -> %c: has 2 inputs, op 'scale' takes 1"});
  Base u;
  u.na->inputs.pop_back();
  ExpectRejected(*u.g, {"node #0 'add' -> %a: has 1 inputs, op 'add' takes 2"});
}

TEST(Verifier, NullInputAndNullOp) {
  Base t;
  t.nb->inputs[1] = nullptr;
  ExpectRejected(*t.g, {"node #1 'mul' -> %b: input 1 is null"});
  Base u;
  u.nc->op = nullptr;
  ExpectRejected(*u.g, {"node #2 '<null op>' -> %c: has no op"});
}

TEST(Verifier, InputTypesRejectedByTheOpRule) {
  Base t;
  Builder b(t.g.get());
  Value* z = b.Input("z", DType::kF32, Shape{4});
  t.nb->inputs[1] = z;
  ExpectRejected(*t.g, {"node #1 'mul' -> %b: input 1 (y) f32[4] must equal the trailing dimensions of input 0 (x) f32[2,3]"});
  Base u;
  Value* h = Builder(u.g.get()).Input("h", DType::kF16, Shape{3});
  u.na->inputs[1] = h;
  ExpectRejected(*u.g, {"node #0 'add' -> %a: input 1 (y) f16[3] must have the dtype of input 0 (x) f32[2,3]"});
}

TEST(Verifier, BadStream) {
  for (int s : {3, -1, 100}) {
    Base t;
    t.nb->stream = s;
    ExpectRejected(*t.g, {"node #1 'mul' -> %b: stream " + std::to_string(s) + " does not exist"});
  }
  Base ok;
  ok.nb->stream = 2;
  EXPECT_TRUE(Verify(*ok.g).ok());
}

TEST(Verifier, DependencyOnLaterNode) {
  Base t;
  t.na->deps.push_back(t.nc);
  ExpectRejected(*t.g, {"node #0 'add' -> %a: depends on node #2 'scale' -> %c, which is scheduled after it"});
  Base self;
  self.nb->deps.push_back(self.nb);
  ExpectRejected(*self.g, {"node #1 'mul' -> %b: depends on node #1 'mul'"});
  Base ok;
  ok.nc->deps.push_back(ok.na);
  EXPECT_TRUE(Verify(*ok.g).ok());
}

// p:param, gr:input, m,v:state, s:input scalars;  #0 adamw(p, gr, m, v, s)
struct AdamWGraph {
  Graph g{"opt"};
  Value *p, *gr, *m, *v, *s, *ss;
  std::vector<Value*> outs;
  AdamWGraph() {
    Builder b(&g);
    p = b.Param("p", DType::kF32, Shape{4});
    gr = b.Input("gr", DType::kF32, Shape{4});
    m = b.State("m", DType::kF32, Shape{4}, MemCategory::kOptimizerState);
    v = b.State("v", DType::kF32, Shape{4}, MemCategory::kOptimizerState);
    s = b.Input("s", DType::kF32, Shape{kAdamWScalars});
    ss = b.Input("ss", DType::kF32, Shape{});
    b.set_phase(Phase::kOptimizer);
    outs = b.Emit("adamw", {p, gr, m, v, s, ss}, {}, "upd");
  }
};

TEST(Verifier, InPlaceOverwrittenInputUsedLater) {
  AdamWGraph t;
  EXPECT_TRUE(Verify(t.g).ok());
  Builder b(&t.g);
  ops::Scale(b, t.p, 1.0, "late");  // reads p after adamw overwrote it
  ExpectRejected(t.g, {"node #1 'scale' -> %late: uses %p after an earlier node overwrote it in place"});

  AdamWGraph u;
  Builder b2(&u.g);
  ops::Scale(b2, u.outs[1], 1.0, "ok");  // the updated moment is fine to read
  EXPECT_TRUE(Verify(u.g).ok()) << Verify(u.g).ToString();
  u.g.outputs() = {u.m};
  ExpectRejected(u.g, {"graph output %m is overwritten in place"});
}

TEST(Verifier, ViewOfInPlaceOverwrittenValueUsedLater) {
  // v = reshape(p) made before the update shows p's memory: reading it afterwards is stale too.
  Graph g("views");
  Builder b(&g);
  Value* p = b.Param("p", DType::kF32, Shape{4});
  Value* view = ops::Reshape(b, p, Shape{2, 2}, "pview");
  Value* gr = b.Input("gr", DType::kF32, Shape{4});
  Value* m = b.State("m", DType::kF32, Shape{4}, MemCategory::kOptimizerState);
  Value* v = b.State("v", DType::kF32, Shape{4}, MemCategory::kOptimizerState);
  Value* s = b.Input("s", DType::kF32, Shape{kAdamWScalars});
  Value* ss = b.Input("ss", DType::kF32, Shape{});
  b.Emit("adamw", {p, gr, m, v, s, ss}, {}, "upd");
  EXPECT_TRUE(Verify(g).ok());
  ops::Scale(b, view, 1.0, "late");
  ExpectRejected(g, {"node #2 'scale' -> %late: uses %pview after an earlier node overwrote it in place"});
}

TEST(Verifier, InPlaceSizeMismatch) {
  AdamWGraph t;
  t.outs[1]->shape = Shape{2, 2};  // the op rule catches it first, naming the node
  ExpectRejected(t.g, {"node #0 'adamw' -> %upd: output %upd.exp_avg is declared f32[2,2]"});
}

TEST(Verifier, NonScalarOrIntegerLoss) {
  Base t;
  t.g->set_loss(t.b);
  ExpectRejected(*t.g, {"loss %b must be a floating scalar, is f32[2,3]"});
  Base u;
  Builder b(u.g.get());
  Value* n = ops::Arange(b, 1, DType::kI32, "n");
  u.g->set_loss(n);
  ExpectRejected(*u.g, {"loss %n must be a floating scalar, is i32[1]"});
  Base ok;
  Builder bo(ok.g.get());
  ok.g->set_loss(ops::ReduceSumTo(bo, ok.c, Shape{}, "l"));
  EXPECT_TRUE(Verify(*ok.g).ok());
}

TEST(Verifier, GradientEntries) {
  Base t;
  t.g->grads().push_back({t.w, t.a});
  ExpectRejected(*t.g, {"gradient %a f32[2,3] does not match param %w f32[3]"});
  Base u;
  u.g->grads().push_back({u.x, u.c});
  ExpectRejected(*u.g, {"gradient of %x, which is not a param"});
  Base r;
  Builder b(r.g.get());
  Value* gw = ops::Scale(b, r.y, 1.0, "gw");
  r.g->grads().push_back({r.w, gw});
  EXPECT_TRUE(Verify(*r.g).ok());
  r.g->RemoveNode(r.g->nodes().back().get());
  ExpectRejected(*r.g, {"a gradient entry names a value not in the graph"});
}

TEST(Verifier, DuplicateNames) {
  Base t;
  t.c->name = "a";
  ExpectRejected(*t.g, {"value name %a is used twice"});
  Base u;
  u.w->name = "x";
  ExpectRejected(*u.g, {"value name %x is used twice"});
}

TEST(Verifier, ValueDefinedTwice) {
  Base t;
  t.nb->outputs[0] = t.a;  // a now appears as an output of two nodes
  ExpectRejected(*t.g, {"node #1 'mul' -> %a: output %a is defined by another node too"});
}

TEST(Verifier, WrongOutputCount) {
  Base t;
  t.nc->outputs.clear();
  ExpectRejected(*t.g, {"node #2 'scale': has 0 outputs, op 'scale' defines 1"});
}

TEST(Verifier, PersistentDefinedByNodeAndOrphanIntermediate) {
  Base t;
  t.x->producer = t.na;
  ExpectRejected(*t.g, {"input %x must not be defined by a node"});
  Base u;
  u.b->producer = nullptr;
  ExpectRejected(*u.g, {"%b is an intermediate with no defining node in the graph"});
}

TEST(Verifier, GraphOutputNotInGraph) {
  Base t;
  t.g->RemoveNode(t.nc);
  ExpectRejected(*t.g, {"a graph output is not in the graph"});
}

TEST(Verifier, MalformedParsedText) {
  testing::RegisterTestOps();
  struct Case {
    const char* text;
    std::string want;
  };
  const Case cases[] = {
      {"graph \"g\" {\n input %x : f32[2]\n %y : f32[2] = scale(%x)\n}\n", "node #0 'scale' -> %y: op 'scale' needs attribute 'alpha'"},
      {"graph \"g\" {\n input %x : f32[2]\n %y : f32[2] = scale(%x) {alpha=1.0} stream=7\n}\n", "node #0 'scale' -> %y: stream 7"},
      {"graph \"g\" {\n input %x : f32[2]\n %y : f32[2] = scale(%x) {alpha=1.0}\n %z : f32[2] = scale(%y) {alpha=1.0} deps=[#0]\n"
       " %w : f32[2] = scale(%z) {alpha=1.0}\n}\n", ""},  // valid: a dep on an earlier node
      {"graph \"g\" {\n input %x : f32[2]\n %y : f32[2] = scale(%x) {alpha=1.0} deps=[#1]\n %z : f32[2] = scale(%y) {alpha=1.0}\n}\n",
       "node #0 'scale' -> %y: depends on node #1 'scale' -> %z"},
      {"graph \"g\" {\n input %x : f32[2]\n %y : f32[3] = add(%x, %x)\n}\n", "node #0 'add' -> %y: output %y is declared f32[3]"},
      {"graph \"g\" {\n input %x : f32[2]\n %y : f32[2] = test_attrs(%x) {b=false, dt=f32, f=0.5, i=1, ints=[], s=\"\"}\n}\n",
       "node #0 'test_attrs' -> %y: has 1 outputs, op 'test_attrs' defines 2"},
      {"graph \"g\" {\n input %x : f32[2]\n %y : f32[2], %a : f32[] = test_attrs(%x)\n}\n", "node #0 'test_attrs' -> %y: op 'test_attrs' needs attribute 'i'"},
      {"graph \"g\" {\n input %x : f32[2]\n %y : f32[2], %a : f32[] = test_attrs(%x) {i=1}\n}\n", "node #0 'test_attrs' -> %y: attribute 'f' is missing"},
      {"graph \"g\" {\n input %x : f32[2, 3]\n loss %x\n}\n", "loss %x must be a floating scalar"},
      {"graph \"g\" {\n input %x : f32[2]\n param %w : f32[3]\n grad %w = %x\n}\n", "gradient %x f32[2] does not match param %w f32[3]"},
  };
  for (const Case& c : cases) {
    auto p = ParseGraph(c.text);
    ASSERT_TRUE(p.ok()) << p.status().ToString() << "\n" << c.text;
    Status s = Verify(**p);
    if (c.want.empty()) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      continue;
    }
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_NE(s.message().find(c.want), std::string::npos) << "want '" << c.want << "' in: " << s.message();
  }
}

}  // namespace
}  // namespace zt::ir
