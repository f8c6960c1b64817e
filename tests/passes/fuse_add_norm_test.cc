// FuseAddNorm: on the real step graphs of GPT-2 and Llama (Engine::BuildStepGraph, then ZeRO
// stage 0 or 3) the fused node counts equal those counted from the models by hand, no fusible
// pair is left, the graph verifies, and outputs, loss and gradient entries are the same Values
// under the same names; before/after IR text on small graphs for each rule, including the graphs
// the pass must leave unchanged (a reader of the sum between add and norm, a broadcasting add, a
// dx used twice, a backward whose dw is read in between and whose residual comes after it).
#include <gtest/gtest.h>

#include <map>

#include "ir/autodiff.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "models/gpt2.h"
#include "models/llama.h"
#include "passes/fuse_add_norm.h"
#include "passes/pass_text.h"
#include "passes/zero.h"
#include "passes/step_graph.h"
#include "runtime/engine.h"

namespace zt::passes {
namespace {

constexpr int64_t kLayers = testing::kStepGraphLayers;
using testing::StepGraph;

struct Counts {
  int norm = 0, fused = 0, bwd = 0, bwd_res = 0, add = 0;
};

Counts Count(const ir::Graph& g, const char* norm, const char* fused, const char* bwd, size_t bwd_inputs) {
  Counts c;
  for (const auto& n : g.nodes()) {
    const std::string& op = n->op->name;
    c.norm += op == norm;
    c.fused += op == fused;
    c.add += op == "add";
    if (op == bwd) (n->inputs.size() == bwd_inputs ? c.bwd : c.bwd_res)++;
  }
  return c;
}

// No add feeds a norm's x with operands of one shape; no norm backward's dx is read by an add.
void ExpectNoFusiblePairLeft(const ir::Graph& g, const char* norm, const char* bwd) {
  for (const auto& n : g.nodes()) {
    if (n->op->name == norm) {
      const ir::Node* p = n->inputs[0]->producer;
      if (p != nullptr && p->op->name == "add") {
        EXPECT_NE(p->inputs[0]->shape, p->inputs[1]->shape) << g.Describe(n.get()) << " reads a fusible add";
      }
    }
    if (n->op->name == "add") {
      for (const ir::Value* in : n->inputs) {
        EXPECT_FALSE(in->producer != nullptr && in->producer->op->name == bwd && in->producer_index == 0)
            << g.Describe(n.get()) << " adds the dx of " << g.Describe(in->producer);
      }
    }
  }
}

struct StepResults {
  std::vector<std::pair<const ir::Value*, std::string>> outputs, grads;
  const ir::Value* loss;
};

StepResults Results(const ir::Graph& g) {
  StepResults r;
  for (const ir::Value* v : g.outputs()) r.outputs.push_back({v, v->name});
  for (const auto& [p, gr] : g.grads()) r.grads.push_back({gr, p->name + " <- " + gr->name});
  r.loss = g.loss();
  return r;
}

void CheckModel(const std::string& model, int stage, int64_t world, DType dtype) {
  SCOPED_TRACE(model + " ZeRO " + std::to_string(stage) + " on " + std::to_string(world) + " ranks, " +
               DTypeName(dtype));
  const bool gpt2 = model == "gpt2";
  const char* norm = gpt2 ? "layernorm" : "rmsnorm";
  const char* fused = gpt2 ? "add_layernorm" : "add_rmsnorm";
  const char* bwd = gpt2 ? "layernorm_bwd" : "rmsnorm_bwd";
  const size_t bwd_inputs = gpt2 ? 5 : 4;
  auto g = StepGraph(model, dtype, stage, world);
  ASSERT_TRUE(ir::Verify(*g).ok());
  const Counts before = Count(*g, norm, fused, bwd, bwd_inputs);
  const size_t nodes_before = g->nodes().size();
  const StepResults results = Results(*g);
  FuseAddNorm pass;
  auto changed = pass.Run(*g);
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  EXPECT_TRUE(*changed);
  Status v = ir::Verify(*g);
  ASSERT_TRUE(v.ok()) << v.ToString();
  const Counts after = Count(*g, norm, fused, bwd, bwd_inputs);
  // By hand: 2L + 1 norms (ln_1, ln_2 per block and ln_f; input_norm, post_norm and norm). The
  // residual adds of each block feed the next norm: 2L fused forwards. The one left reads the
  // embedding: GPT-2's tok + pos broadcasts pos [T, C] over the batch, Llama's is no add at all.
  // Backward: the residual stream values read by a norm AND a later residual add (the embedding
  // output and every residual but the last, read by ln_f / norm only) get their norm's dx summed
  // with the add's gradient: 2L backwards take a dresidual, the final norm's does not.
  EXPECT_EQ(before.norm, 2 * kLayers + 1);
  EXPECT_EQ(before.fused, 0);
  EXPECT_EQ(before.bwd, 2 * kLayers + 1);
  EXPECT_EQ(after.fused, 2 * kLayers);
  EXPECT_EQ(after.norm, 1);
  EXPECT_EQ(after.bwd_res, 2 * kLayers);
  EXPECT_EQ(after.bwd, 1);
  EXPECT_EQ(after.add, before.add - 4 * kLayers);
  EXPECT_EQ(g->nodes().size(), nodes_before - 4 * kLayers);
  ExpectNoFusiblePairLeft(*g, norm, bwd);
  // The step's results: the same Values, under the same names.
  const StepResults now = Results(*g);
  EXPECT_EQ(now.loss, results.loss);
  ASSERT_EQ(now.outputs.size(), results.outputs.size());
  for (size_t i = 0; i < now.outputs.size(); ++i) {
    EXPECT_EQ(now.outputs[i].first, results.outputs[i].first);
    EXPECT_EQ(now.outputs[i].first->name, results.outputs[i].second);
    EXPECT_TRUE(g->Contains(now.outputs[i].first)) << results.outputs[i].second;
  }
  ASSERT_EQ(now.grads.size(), results.grads.size());
  for (size_t i = 0; i < now.grads.size(); ++i) {
    EXPECT_EQ(now.grads[i].first, results.grads[i].first) << results.grads[i].second;
    EXPECT_EQ(now.grads[i].second, results.grads[i].second);
    EXPECT_TRUE(g->Contains(now.grads[i].first)) << results.grads[i].second;
  }
  if (stage == 0) {
    EXPECT_EQ(now.grads.size(), ir::ParamsOf(*g).size());
  }
  // A second run finds nothing more.
  auto again = pass.Run(*g);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST(FuseAddNorm, Gpt2StepGraphs) {
  CheckModel("gpt2", 0, 1, DType::kF32);
  CheckModel("gpt2", 0, 1, DType::kBF16);
  CheckModel("gpt2", 3, 1, DType::kBF16);
  CheckModel("gpt2", 3, 2, DType::kF32);
}

TEST(FuseAddNorm, LlamaStepGraphs) {
  CheckModel("llama", 0, 1, DType::kF32);
  CheckModel("llama", 0, 1, DType::kBF16);
  CheckModel("llama", 3, 1, DType::kBF16);
  CheckModel("llama", 3, 2, DType::kF32);
}

// ---- Before/after IR text ----

// Runs the pass on `before`; expects `after` (unchanged when empty), see pass_text.h.
void ExpectFusion(const std::string& before, const std::string& after) {
  FuseAddNorm pass;
  testing::ExpectRewrite(pass, before, after);
}

// The forward pair with a (ZeRO-3-like) view of the weight between them: the fused node takes
// the norm's place and defines %r itself; the later reader of %r is untouched.
TEST(FuseAddNorm, ForwardAtTheNormsPlace) {
  ExpectFusion(R"(graph "g" {
  input %x : f32[2,4]
  input %y : f32[2,4]
  param %shard : f32[8]
  %r : f32[2,4] = add(%x, %y)
  %w : f32[4] = view_slice(%shard) {offset=0, shape=[4]}
  %bias : f32[4] = view_slice(%shard) {offset=4, shape=[4]}
  %h : f32[2,4], %h.mean : f32[2], %h.rstd : f32[2] = layernorm(%r, %w, %bias) {eps=1e-05}
  %z : f32[2,4] = mul(%h, %r)
  output %z
}
)",
               R"(graph "g" {
  input %x : f32[2,4]
  input %y : f32[2,4]
  param %shard : f32[8]
  %w : f32[4] = view_slice(%shard) {offset=0, shape=[4]}
  %bias : f32[4] = view_slice(%shard) {offset=4, shape=[4]}
  %r : f32[2,4], %h : f32[2,4], %h.mean : f32[2], %h.rstd : f32[2] = add_layernorm(%x, %y, %w, %bias) {eps=1e-05}
  %z : f32[2,4] = mul(%h, %r)
  output %z
}
)");
  ExpectFusion(R"(graph "g" {
  input %x : bf16[3,4]
  input %y : bf16[3,4]
  param %w : bf16[4]
  %r : bf16[3,4] = add(%x, %y)
  %h : bf16[3,4], %h.rstd : f32[3] = rmsnorm(%r, %w) {eps=1e-06}
  output %h
  output %r
}
)",
               R"(graph "g" {
  input %x : bf16[3,4]
  input %y : bf16[3,4]
  param %w : bf16[4]
  %r : bf16[3,4], %h : bf16[3,4], %h.rstd : f32[3] = add_rmsnorm(%x, %y, %w) {eps=1e-06}
  output %h
  output %r
}
)");
}

// Left unchanged: a node between add and norm reads %r; an add that broadcasts; a norm that is
// not fed by an add.
TEST(FuseAddNorm, ForwardCasesLeftAlone) {
  ExpectFusion(R"(graph "g" {
  input %x : f32[2,4]
  input %y : f32[2,4]
  input %w : f32[4]
  %r : f32[2,4] = add(%x, %y)
  %q : f32[2,4] = scale(%r) {alpha=2.0}
  %h : f32[2,4], %h.rstd : f32[2] = rmsnorm(%r, %w) {eps=1e-06}
  output %h
  output %q
}
)",
               "");
  ExpectFusion(R"(graph "g" {
  input %x : f32[2,4]
  input %y : f32[4]
  input %w : f32[4]
  %r : f32[2,4] = add(%x, %y)
  %h : f32[2,4], %h.mean : f32[2], %h.rstd : f32[2] = layernorm(%r, %w, %w) {eps=1e-05}
  output %h
}
)",
               "");
  ExpectFusion(R"(graph "g" {
  input %x : f32[2,4]
  input %w : f32[4]
  %r : f32[2,4] = scale(%x) {alpha=2.0}
  %h : f32[2,4], %h.rstd : f32[2] = rmsnorm(%r, %w) {eps=1e-06}
  output %h
}
)",
               "");
}

// Memory and ordering hazards: a node between add and norm overwrites an operand of the add in
// place (the fused node would read it after), or depends on the add (which goes away) explicitly;
// but an ordering edge on the add from a node after the norm moves to the fused node.
TEST(FuseAddNorm, ForwardHazards) {
  ExpectFusion(R"(graph "g" {
  input %x : f32[2,4]
  input %w : f32[4]
  state %acc : f32[2,4]
  %r : f32[2,4] = add(%acc, %x)
  %acc.z : f32[2,4] = zero(%acc)
  %h : f32[2,4], %h.rstd : f32[2] = rmsnorm(%r, %w) {eps=1e-06}
  output %h
}
)",
               "");
  ExpectFusion(R"(graph "g" {
  input %x : f32[2,4]
  input %y : f32[2,4]
  input %w : f32[4]
  %r : f32[2,4] = add(%x, %y)
  %q : f32[2,4] = scale(%x) {alpha=2.0} deps=[#0]
  %h : f32[2,4], %h.rstd : f32[2] = rmsnorm(%r, %w) {eps=1e-06}
  output %h
  output %q
}
)",
               "");
  ExpectFusion(R"(graph "g" {
  input %x : f32[2,4]
  input %y : f32[2,4]
  input %w : f32[4]
  %r : f32[2,4] = add(%x, %y)
  %h : f32[2,4], %h.rstd : f32[2] = rmsnorm(%r, %w) {eps=1e-06}
  %q : f32[2,4] = scale(%x) {alpha=2.0} deps=[#0]
  output %h
  output %q
}
)",
               R"(graph "g" {
  input %x : f32[2,4]
  input %y : f32[2,4]
  input %w : f32[4]
  %r : f32[2,4], %h : f32[2,4], %h.rstd : f32[2] = add_rmsnorm(%x, %y, %w) {eps=1e-06}
  %q : f32[2,4] = scale(%x) {alpha=2.0} deps=[#0]
  output %h
  output %q
}
)");
}

// A node between the backward and the add overwrites the backward's input %x in place: the
// backward cannot move to the add's place, so it stays at its own (its residual %o is earlier).
TEST(FuseAddNorm, BackwardStaysBeforeAnInPlaceOverwrite) {
  ExpectFusion(R"(graph "g" {
  input %dy : f32[2,4]
  input %o : f32[2,4]
  param %w : f32[4]
  state %x : f32[2,4]
  %n : f32[2,4], %n.rstd : f32[2] = rmsnorm(%x, %w) {eps=1e-06}
  %dx : f32[2,4], %dx.dw : f32[4] = rmsnorm_bwd(%dy, %x, %w, %n.rstd) phase=backward
  %x.z : f32[2,4] = zero(%x) phase=backward
  %s : f32[2,4] = add(%o, %dx) phase=backward
  output %n
  output %s
  grad %w = %dx.dw
}
)",
               R"(graph "g" {
  input %dy : f32[2,4]
  input %o : f32[2,4]
  param %w : f32[4]
  state %x : f32[2,4]
  %n : f32[2,4], %n.rstd : f32[2] = rmsnorm(%x, %w) {eps=1e-06}
  %s : f32[2,4], %dx.dw : f32[4] = rmsnorm_bwd(%dy, %x, %w, %n.rstd, %o) phase=backward
  %x.z : f32[2,4] = zero(%x) phase=backward
  output %n
  output %s
  grad %w = %dx.dw
}
)");
}

// The backward at the add's place: the add's result %s is now defined by the backward node (with
// dresidual %o, whichever operand of the add dx was) and %dx is gone.
TEST(FuseAddNorm, BackwardAtTheAddsPlace) {
  ExpectFusion(R"(graph "g" {
  input %dy : f32[2,4]
  input %x : f32[2,4]
  input %o : f32[2,4]
  param %w : f32[4]
  %n : f32[2,4], %n.rstd : f32[2] = rmsnorm(%x, %w) {eps=1e-06}
  %dx : f32[2,4], %dx.dw : f32[4] = rmsnorm_bwd(%dy, %x, %w, %n.rstd) phase=backward
  %t : f32[2,4] = scale(%o) {alpha=3.0} phase=backward
  %s : f32[2,4] = add(%t, %dx) phase=backward
  output %n
  output %s
  grad %w = %dx.dw
}
)",
               R"(graph "g" {
  input %dy : f32[2,4]
  input %x : f32[2,4]
  input %o : f32[2,4]
  param %w : f32[4]
  %n : f32[2,4], %n.rstd : f32[2] = rmsnorm(%x, %w) {eps=1e-06}
  %t : f32[2,4] = scale(%o) {alpha=3.0} phase=backward
  %s : f32[2,4], %dx.dw : f32[4] = rmsnorm_bwd(%dy, %x, %w, %n.rstd, %t) phase=backward
  output %n
  output %s
  grad %w = %dx.dw
}
)");
}

// A node between reads dw: the backward stays at its own place (its residual %o is defined
// before it).
TEST(FuseAddNorm, BackwardAtItsOwnPlace) {
  ExpectFusion(R"(graph "g" {
  input %dy : f32[2,4]
  input %x : f32[2,4]
  input %o : f32[2,4]
  param %w : f32[4]
  param %b : f32[4]
  %n : f32[2,4], %n.mean : f32[2], %n.rstd : f32[2] = layernorm(%x, %w, %b) {eps=1e-05}
  %dx : f32[2,4], %dx.dw : f32[4], %dx.db : f32[4] = layernorm_bwd(%dy, %x, %w, %n.mean, %n.rstd) phase=backward
  %p : f32[4] = scale(%dx.dw) {alpha=0.5} phase=backward
  %s : f32[2,4] = add(%dx, %o) phase=backward
  output %n
  output %s
  output %p
  grad %w = %dx.dw
  grad %b = %dx.db
}
)",
               R"(graph "g" {
  input %dy : f32[2,4]
  input %x : f32[2,4]
  input %o : f32[2,4]
  param %w : f32[4]
  param %b : f32[4]
  %n : f32[2,4], %n.mean : f32[2], %n.rstd : f32[2] = layernorm(%x, %w, %b) {eps=1e-05}
  %s : f32[2,4], %dx.dw : f32[4], %dx.db : f32[4] = layernorm_bwd(%dy, %x, %w, %n.mean, %n.rstd, %o) phase=backward
  %p : f32[4] = scale(%dx.dw) {alpha=0.5} phase=backward
  output %n
  output %s
  output %p
  grad %w = %dx.dw
  grad %b = %dx.db
}
)");
}

// Left unchanged: dw read in between AND the residual defined after the backward; dx read twice;
// an add of another shape (broadcast: dx is the second operand, [4] is its suffix).
TEST(FuseAddNorm, BackwardCasesLeftAlone) {
  ExpectFusion(R"(graph "g" {
  input %dy : f32[2,4]
  input %x : f32[2,4]
  input %o : f32[2,4]
  param %w : f32[4]
  %n : f32[2,4], %n.rstd : f32[2] = rmsnorm(%x, %w) {eps=1e-06}
  %dx : f32[2,4], %dx.dw : f32[4] = rmsnorm_bwd(%dy, %x, %w, %n.rstd) phase=backward
  %p : f32[4] = scale(%dx.dw) {alpha=0.5} phase=backward
  %t : f32[2,4] = scale(%o) {alpha=3.0} phase=backward
  %s : f32[2,4] = add(%dx, %t) phase=backward
  output %n
  output %s
  output %p
}
)",
               "");
  ExpectFusion(R"(graph "g" {
  input %dy : f32[2,4]
  input %x : f32[2,4]
  input %o : f32[2,4]
  param %w : f32[4]
  %n : f32[2,4], %n.rstd : f32[2] = rmsnorm(%x, %w) {eps=1e-06}
  %dx : f32[2,4], %dx.dw : f32[4] = rmsnorm_bwd(%dy, %x, %w, %n.rstd) phase=backward
  %s : f32[2,4] = add(%dx, %o) phase=backward
  %u : f32[2,4] = mul(%dx, %s) phase=backward
  output %n
  output %u
}
)",
               "");
  ExpectFusion(R"(graph "g" {
  input %dy : f32[4]
  input %x : f32[4]
  input %o : f32[2,4]
  param %w : f32[4]
  %n : f32[4], %n.rstd : f32[] = rmsnorm(%x, %w) {eps=1e-06}
  %dx : f32[4], %dx.dw : f32[4] = rmsnorm_bwd(%dy, %x, %w, %n.rstd) phase=backward
  %s : f32[2,4] = add(%o, %dx) phase=backward
  output %n
  output %s
}
)",
               "");
}

}  // namespace
}  // namespace zt::passes
