// FuseMatmulEpilogue: on GPT-2's real step graph (autodiff, AdamW, ZeRO 0 and 3 on one and two
// ranks, f32 and bf16) every layer's MLP gets one matmul_gelu and one matmul_dgelu, no gelu or
// gelu_bwd is left, the four bias gradients of every layer come out of matmul_bgrad nodes, the
// graph verifies, names of gradients and outputs are kept, and a second run changes nothing;
// Llama (no gelu, no biases) is unchanged. Before/after IR text on hand-built graphs, including
// graphs the pass must leave alone (a product used elsewhere, a bias on the backward product,
// other layouts, other reductions, differing phases, no valid place), and the fused graphs compute
// bit-identical results on the CPU.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "ir/text.h"
#include "ir/verifier.h"
#include "models/gpt2.h"
#include "models/llama.h"
#include "passes/fuse_matmul_epilogue.h"
#include "passes/step_graph.h"
#include "runtime/engine.h"
#include "support/graph_runner.h"

namespace zt::passes {
namespace {

constexpr int64_t kLayers = testing::kStepGraphLayers;
using testing::StepGraph;

std::map<std::string, int> OpCounts(const ir::Graph& g) {
  std::map<std::string, int> n;
  for (const auto& node : g.nodes()) n[node->op->name]++;
  return n;
}

// What the step reads and returns: outputs, loss and gradient entries, by name.
std::vector<std::string> Interface(const ir::Graph& g) {
  std::vector<std::string> names;
  for (const ir::Value* v : g.outputs()) names.push_back("output " + v->name);
  if (g.loss()) names.push_back("loss " + g.loss()->name);
  for (const auto& [p, gr] : g.grads())
    names.push_back("grad " + p->name + " = " + gr->name + " " + MemCategoryName(gr->category));
  return names;
}

TEST(FuseMatmulEpilogue, Gpt2StepFusesEveryLayer) {
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    for (auto [stage, world] : std::vector<std::pair<int, int64_t>>{{0, 1}, {3, 1}, {3, 2}}) {
      SCOPED_TRACE(std::string(DTypeName(dtype)) + " ZeRO " + std::to_string(stage) + " on " + std::to_string(world));
      auto g = StepGraph("gpt2", dtype, stage, world);
      auto before = OpCounts(*g);
      auto interface = Interface(*g);
      EXPECT_EQ(before["gelu"], kLayers);
      EXPECT_EQ(before["gelu_bwd"], kLayers);
      FuseMatmulEpilogue pass;
      auto changed = pass.Run(*g);
      ASSERT_TRUE(changed.ok()) << changed.status().ToString();
      EXPECT_TRUE(*changed);
      Status v = ir::Verify(*g);
      ASSERT_TRUE(v.ok()) << v.ToString();
      auto after = OpCounts(*g);
      EXPECT_EQ(after["matmul_gelu"], kLayers);
      EXPECT_EQ(after["matmul_dgelu"], kLayers);
      EXPECT_EQ(after["gelu"], 0);
      EXPECT_EQ(after["gelu_bwd"], 0);
      // Every linear layer's bias: attention c_attn and c_proj, MLP c_fc and c_proj.
      EXPECT_EQ(after["matmul_bgrad"], 4 * kLayers);
      EXPECT_EQ(after["reduce_sum_to"], before["reduce_sum_to"] - 4 * kLayers);
      EXPECT_EQ(after["matmul"], before["matmul"] - 2 * kLayers - 4 * kLayers);
      EXPECT_EQ(Interface(*g), interface);
      for (const auto& n : g->nodes()) {
        const std::string& op = n->op->name;
        if (op == "matmul_gelu") {
          EXPECT_EQ(n->phase, ir::Phase::kForward);
        } else if (op == "matmul_dgelu" || op == "matmul_bgrad") {
          EXPECT_EQ(n->phase, ir::Phase::kBackward);
        }
        if (op == "matmul_bgrad") {
          EXPECT_EQ(n->attrs.GetString("bias_of"), "b");  // Conv1D weights
        }
      }
      // The text form round-trips, and there is nothing left to fuse.
      std::string text = ir::PrintGraph(*g);
      auto parsed = ir::ParseGraph(text);
      ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
      EXPECT_EQ(ir::PrintGraph(**parsed), text);
      auto again = pass.Run(*g);
      ASSERT_TRUE(again.ok());
      EXPECT_FALSE(*again);
      EXPECT_EQ(ir::PrintGraph(*g), text);
    }
  }
}

TEST(FuseMatmulEpilogue, LlamaIsUnchanged) {
  for (int stage : {0, 3}) {
    auto g = StepGraph("llama", DType::kBF16, stage);
    std::string before = ir::PrintGraph(*g);
    FuseMatmulEpilogue pass;
    auto changed = pass.Run(*g);
    ASSERT_TRUE(changed.ok());
    EXPECT_FALSE(*changed) << "ZeRO " << stage;
    EXPECT_EQ(ir::PrintGraph(*g), before);
  }
}

// ---- Before/after IR text ----

std::unique_ptr<ir::Graph> Parse(const std::string& text) {
  auto g = ir::ParseGraph(text);
  ZT_CHECK(g.ok()) << g.status().ToString();
  Status v = ir::Verify(**g);
  ZT_CHECK(v.ok()) << v.ToString();
  return std::move(*g);
}

// Runs the pass on `before`; expects the printed result to be `after` (unchanged when `after` is
// empty). When it changed, both graphs run on the CPU with the same inputs and every output must
// be bit-identical.
void ExpectFusion(const std::string& before, const std::string& after) {
  auto g = Parse(before);
  ASSERT_EQ(ir::PrintGraph(*g), before) << "test texts are written in printer form";
  FuseMatmulEpilogue pass;
  auto changed = pass.Run(*g);
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  std::string printed = ir::PrintGraph(*g);
  EXPECT_EQ(printed, after.empty() ? before : after);
  EXPECT_EQ(*changed, !after.empty());
  Status v = ir::Verify(*g);
  EXPECT_TRUE(v.ok()) << v.ToString();
  if (after.empty()) return;
  zt::testing::GraphRunner plain(Parse(before)), fused(std::move(g));
  uint64_t seed = 1;
  for (const auto& val : plain.graph().values()) {
    if (val->kind != ir::ValueKind::kInput) continue;
    auto data = zt::testing::RandomUniform(val->shape.numel(), seed++, -2.0f, 2.0f);
    plain.Set(val->name, data);
    fused.Set(val->name, data);
  }
  plain.Run();
  fused.Run();
  for (const ir::Value* out : plain.graph().outputs()) {
    auto want = plain.Get(out->name), got = fused.Get(out->name);
    ASSERT_EQ(want.size(), got.size());
    EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)), 0) << "%" << out->name;
  }
}

TEST(FuseMatmulEpilogue, MatmulGeluKeepsThePreActivationForTheBackward) {
  ExpectFusion(R"(graph "g" {
  input %x : f32[4,3]
  input %w : f32[3,8]
  input %bias : f32[8]
  input %dy : f32[4,8]
  %u : f32[4,8] = matmul(%x, %w, %bias) {trans_a=false, trans_b=false}
  %h : f32[4,8] = gelu(%u)
  %du : f32[4,8] = gelu_bwd(%dy, %u) phase=backward
  output %h
  output %du
}
)",
               R"(graph "g" {
  input %x : f32[4,3]
  input %w : f32[3,8]
  input %bias : f32[8]
  input %dy : f32[4,8]
  %h : f32[4,8], %u : f32[4,8] = matmul_gelu(%x, %w, %bias) {trans_a=false, trans_b=false}
  %du : f32[4,8] = gelu_bwd(%dy, %u) phase=backward
  output %h
  output %du
}
)");
}

TEST(FuseMatmulEpilogue, MatmulDGelu) {
  ExpectFusion(R"(graph "g" {
  input %u : bf16[2,4,8]
  input %dy : bf16[2,4,5]
  input %w : bf16[8,5]
  %dh : bf16[2,4,8] = matmul(%dy, %w) {trans_a=false, trans_b=true} phase=backward
  %du : bf16[2,4,8] = gelu_bwd(%dh, %u) phase=backward
  output %du
}
)",
               R"(graph "g" {
  input %u : bf16[2,4,8]
  input %dy : bf16[2,4,5]
  input %w : bf16[8,5]
  %du : bf16[2,4,8] = matmul_dgelu(%dy, %w, %u) {trans_a=false, trans_b=true} phase=backward
  output %du
}
)");
}

TEST(FuseMatmulEpilogue, ProductUsedElsewhereOrBiasedIsNotFusedWithGeluBwd) {
  ExpectFusion(R"(graph "g" {
  input %u : f32[4,8]
  input %dy : f32[4,5]
  input %w : f32[8,5]
  %dh : f32[4,8] = matmul(%dy, %w) {trans_a=false, trans_b=true}
  %du : f32[4,8] = gelu_bwd(%dh, %u)
  %s : f32[4,8] = scale(%dh) {alpha=2.0}
  output %du
  output %s
}
)",
               "");
  ExpectFusion(R"(graph "g" {
  input %u : f32[4,8]
  input %dy : f32[4,5]
  input %w : f32[8,5]
  %dh : f32[4,8] = matmul(%dy, %w) {trans_a=false, trans_b=true}
  %du : f32[4,8] = gelu_bwd(%dh, %u)
  output %du
  output %dh
}
)",
               "");
  ExpectFusion(R"(graph "g" {
  input %u : f32[4,8]
  input %dy : f32[4,5]
  input %w : f32[8,5]
  input %b : f32[8]
  %dh : f32[4,8] = matmul(%dy, %w, %b) {trans_a=false, trans_b=true}
  %du : f32[4,8] = gelu_bwd(%dh, %u)
  output %du
}
)",
               "");
  // gelu_bwd's second operand is the product itself, not a pre-activation.
  ExpectFusion(R"(graph "g" {
  input %dy : f32[4,5]
  input %w : f32[8,5]
  %dh : f32[4,8] = matmul(%dy, %w) {trans_a=false, trans_b=true}
  %du : f32[4,8] = gelu_bwd(%dh, %dh)
  output %du
}
)",
               "");
}

TEST(FuseMatmulEpilogue, DifferingPhasesAreNotFused) {
  ExpectFusion(R"(graph "g" {
  input %x : f32[4,3]
  input %w : f32[3,8]
  %u : f32[4,8] = matmul(%x, %w) {trans_a=false, trans_b=false}
  %h : f32[4,8] = gelu(%u) phase=backward
  output %h
}
)",
               "");
}

constexpr const char* kWeightGradient = R"(graph "g" {
  input %x : bf16[2,3,4]
  input %dc : bf16[2,3,8]
  %x_flat : bf16[6,4] = reshape(%x) {shape=[6,4]}
  %dc_flat : bf16[6,8] = reshape(%dc) {shape=[6,8]}
  %dw : bf16[4,8] = matmul(%x_flat, %dc_flat) {trans_a=true, trans_b=false} phase=backward
  %db : bf16[8] = reduce_sum_to(%dc) {shape=[8]} phase=backward
  output %dw
  output %db
}
)";

TEST(FuseMatmulEpilogue, BiasGradientOfAWeightGradient) {
  ExpectFusion(kWeightGradient, R"(graph "g" {
  input %x : bf16[2,3,4]
  input %dc : bf16[2,3,8]
  %x_flat : bf16[6,4] = reshape(%x) {shape=[6,4]}
  %dc_flat : bf16[6,8] = reshape(%dc) {shape=[6,8]}
  %dw : bf16[4,8], %db : bf16[8] = matmul_bgrad(%x_flat, %dc_flat) {bias_of="b", trans_a=true, trans_b=false} phase=backward
  output %dw
  output %db
}
)");
  // nn.Linear's layout: dW = dC^T x, the bias sums the first operand; dC already rank 2.
  ExpectFusion(R"(graph "g" {
  input %x : f32[6,4]
  input %dc : f32[6,8]
  %db : f32[8] = reduce_sum_to(%dc) {shape=[8]} phase=backward
  %dw : f32[8,4] = matmul(%dc, %x) {trans_a=true, trans_b=false} phase=backward
  output %dw
  output %db
}
)",
               R"(graph "g" {
  input %x : f32[6,4]
  input %dc : f32[6,8]
  %dw : f32[8,4], %db : f32[8] = matmul_bgrad(%dc, %x) {bias_of="a", trans_a=true, trans_b=false} phase=backward
  output %dw
  output %db
}
)");
}

TEST(FuseMatmulEpilogue, BiasGradientPlacedWhereEveryInputAndUserFits) {
  // The reduction comes first, the matmul's other operand only after it: the fused node takes the
  // matmul's place (nothing uses the bias gradient in between).
  ExpectFusion(R"(graph "g" {
  input %x : f32[6,4]
  input %dc : f32[6,8]
  %db : f32[8] = reduce_sum_to(%dc) {shape=[8]}
  %x2 : f32[6,4] = scale(%x) {alpha=0.5}
  %dw : f32[4,8] = matmul(%x2, %dc) {trans_a=true, trans_b=false}
  %s : f32[8] = scale(%db) {alpha=3.0}
  output %dw
  output %s
}
)",
               R"(graph "g" {
  input %x : f32[6,4]
  input %dc : f32[6,8]
  %x2 : f32[6,4] = scale(%x) {alpha=0.5}
  %dw : f32[4,8], %db : f32[8] = matmul_bgrad(%x2, %dc) {bias_of="b", trans_a=true, trans_b=false}
  %s : f32[8] = scale(%db) {alpha=3.0}
  output %dw
  output %s
}
)");
  // ... but when the bias gradient is used before the matmul's operand exists, no place works.
  ExpectFusion(R"(graph "g" {
  input %x : f32[6,4]
  input %dc : f32[6,8]
  %db : f32[8] = reduce_sum_to(%dc) {shape=[8]}
  %s : f32[8] = scale(%db) {alpha=3.0}
  %x2 : f32[6,4] = scale(%x) {alpha=0.5}
  %dw : f32[4,8] = matmul(%x2, %dc) {trans_a=true, trans_b=false}
  output %dw
  output %s
}
)",
               "");
}

TEST(FuseMatmulEpilogue, OtherLayoutsAndReductionsAreLeftAlone) {
  // dX = dC W^T reads dC too, but is not a weight gradient.
  ExpectFusion(R"(graph "g" {
  input %w : f32[4,8]
  input %dc : f32[6,8]
  %dx : f32[6,4] = matmul(%dc, %w) {trans_a=false, trans_b=true}
  %db : f32[8] = reduce_sum_to(%dc) {shape=[8]}
  output %dx
  output %db
}
)",
               "");
  // A reduction to more than the last dimension, and a batched (rank-3) weight gradient.
  ExpectFusion(R"(graph "g" {
  input %x : f32[2,3,4]
  input %dc : f32[2,3,8]
  %db : f32[3,8] = reduce_sum_to(%dc) {shape=[3,8]}
  %dw : f32[2,4,8] = matmul(%x, %dc) {trans_a=true, trans_b=false}
  %db1 : f32[8] = reduce_sum_to(%dc) {shape=[8]}
  output %db
  output %dw
  output %db1
}
)",
               "");
}

TEST(FuseMatmulEpilogue, OrderingEdgesMoveToTheFusedNode) {
  ExpectFusion(R"(graph "g" {
  input %x : f32[4,3]
  input %w : f32[3,8]
  input %y : f32[4,8]
  %u : f32[4,8] = matmul(%x, %w) {trans_a=false, trans_b=false}
  %h : f32[4,8] = gelu(%u)
  %z : f32[4,8] = scale(%y) {alpha=2.0} deps=[#1]
  output %h
  output %z
}
)",
               R"(graph "g" {
  input %x : f32[4,3]
  input %w : f32[3,8]
  input %y : f32[4,8]
  %h : f32[4,8], %u : f32[4,8] = matmul_gelu(%x, %w) {trans_a=false, trans_b=false}
  %z : f32[4,8] = scale(%y) {alpha=2.0} deps=[#0]
  output %h
  output %z
}
)");
}

}  // namespace
}  // namespace zt::passes
