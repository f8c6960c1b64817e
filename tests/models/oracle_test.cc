// Whole-model oracle: tiny GPT-2 and Llama models (random weights, 2-3 layers) against an
// independent PyTorch implementation (tests/models/torch_reference.py, float64). Logits, loss and
// every parameter gradient must agree within 1e-5 relative in f32, where relative means
// max|ztrain - torch| / max|torch| over each tensor (so elements near zero do not dominate).
// The models are built with the default padded head (vocabularies 67 and 71 padded to 128), so
// the comparison also covers the padding. Also AdamW against torch.optim.AdamW over 10 steps on
// the same gradients.
#include <gtest/gtest.h>

#include "ir/autodiff.h"
#include "ir/ops/adamw.h"
#include "ir/optimizer.h"
#include "models/gpt2.h"
#include "models/llama.h"
#include "runtime/adamw_scalars.h"
#include "support/graph_runner.h"
#include "support/torch_reference.h"

namespace zt {
namespace {

using testing::GraphRunner;
using testing::ScaledMaxError;
using testing::ToF32Vector;

constexpr double kTolerance = 1e-5;

void CheckAgainstReference(std::unique_ptr<ir::Graph> g, const models::BuiltModel& m,
                           const models::SafetensorsFile& ref) {
  ASSERT_TRUE(ir::AppendBackward(*g, m.loss, m.params).ok());
  g->outputs().push_back(m.logits);
  std::vector<std::string> names;
  for (ir::Value* p : m.params) names.push_back(p->name);
  GraphRunner run(std::move(g));
  for (const auto& n : names) run.Set(n, ToF32Vector(ref, n));
  run.SetInts("tokens", testing::ToIntVector(ref, "tokens"));
  run.SetInts("targets", testing::ToIntVector(ref, "targets"));
  run.Run();
  // The head computes padded logits [B, T, Vp]: the first V columns are the model's, the rest 0.
  std::vector<float> padded = run.Get(m.logits->name), logits;
  const int64_t v = m.vocab, vp = m.padded_vocab;
  ASSERT_EQ(vp, m.logits->shape[-1]);
  for (size_t i = 0; i < padded.size(); ++i) {
    if (static_cast<int64_t>(i) % vp < v) {
      logits.push_back(padded[i]);
    } else {
      ASSERT_EQ(padded[i], 0.0f) << "padding logit " << i;
    }
  }
  EXPECT_LE(ScaledMaxError(logits, ToF32Vector(ref, "ref.logits")), kTolerance) << "logits";
  EXPECT_LE(ScaledMaxError(run.Get(m.loss->name), ToF32Vector(ref, "ref.loss")), kTolerance) << "loss";
  for (const auto& n : names) {
    const ir::Value* grad = run.graph().GradOf(run.value(n));
    ASSERT_NE(grad, nullptr) << n;
    double err = ScaledMaxError(run.Get(grad), ToF32Vector(ref, "ref.grad." + n));
    EXPECT_LE(err, kTolerance) << "gradient of " << n;
  }
}

TEST(Oracle, TinyGpt2MatchesPyTorch) {
  auto ref = testing::RunTorchReference("gpt2 --seed 3 --vocab 67 --positions 16 --embd 32 --layers 2 --heads 4 "
                                        "--batch 2 --seq 9", "gpt2");
  ASSERT_NE(ref, nullptr);
  models::Gpt2Config c;
  c.vocab_size = 67;
  c.n_positions = 16;
  c.n_embd = 32;
  c.n_layer = 2;
  c.n_head = 4;
  auto g = std::make_unique<ir::Graph>("gpt2");
  ir::Builder b(g.get());
  auto m = models::BuildGpt2(b, c, {.batch = 2, .seq = 9});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  CheckAgainstReference(std::move(g), *m, *ref);
}

TEST(Oracle, TinyLlamaMatchesPyTorch) {
  auto ref = testing::RunTorchReference("llama --seed 5 --vocab 71 --embd 32 --intermediate 44 --layers 3 "
                                        "--heads 4 --kv-heads 2 --theta 10000 --batch 2 --seq 7", "llama");
  ASSERT_NE(ref, nullptr);
  models::LlamaConfig c;
  c.vocab_size = 71;
  c.hidden_size = 32;
  c.intermediate_size = 44;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 16;
  auto g = std::make_unique<ir::Graph>("llama");
  ir::Builder b(g.get());
  auto m = models::BuildLlama(b, c, {.batch = 2, .seq = 7});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  CheckAgainstReference(std::move(g), *m, *ref);
}

// AdamW: gradients are fed as inputs, the update runs through the graph's sum_squares and adamw
// nodes; with max_norm > 0 torch clips with clip_grad_norm_ first.
void CheckAdamW(double max_norm) {
  constexpr int kSteps = 10;
  constexpr double kLr = 1e-2, kBeta1 = 0.9, kBeta2 = 0.95;
  auto ref = testing::RunTorchReference("adamw --seed 9 --steps 10 --lr 0.01 --clip " + std::to_string(max_norm),
                                        "adamw" + std::to_string(static_cast<int>(max_norm * 10)));
  ASSERT_NE(ref, nullptr);
  auto g = std::make_unique<ir::Graph>("adamw");
  ir::Builder b(g.get());
  const std::vector<std::pair<std::string, Shape>> shapes = {{"w", Shape{5, 7}}, {"b", Shape{7}}, {"s", Shape{1}}};
  for (auto& [n, s] : shapes) {
    ir::Value* p = b.Param(n, DType::kF32, s);
    ir::Value* gr = b.Input("grad." + n, DType::kF32, s);
    g->grads().push_back({p, gr});
  }
  ir::AdamWOptions o;
  o.beta1 = kBeta1;
  o.beta2 = kBeta2;
  o.eps = 1e-8;
  o.weight_decay = 0.1;
  ASSERT_TRUE(ir::AppendOptimizerStep(*g, {.adamw = o}).ok());
  GraphRunner run(std::move(g));
  for (auto& [n, s] : shapes) {
    run.Set(n, ToF32Vector(*ref, "init." + n));
    run.Set(n + ".exp_avg", std::vector<float>(s.numel(), 0.0f));
    run.Set(n + ".exp_avg_sq", std::vector<float>(s.numel(), 0.0f));
  }
  for (int step = 0; step < kSteps; ++step) {
    for (auto& [n, s] : shapes) run.Set("grad." + n, ToF32Vector(*ref, "grad." + std::to_string(step) + "." + n));
    auto sc = AdamWStepScalars(step + 1, kLr, kBeta1, kBeta2, 1.0, max_norm);
    run.Set(ir::kAdamWScalarsInput, std::vector<float>(sc.begin(), sc.end()));
    run.Run();
  }
  for (auto& [n, s] : shapes) {
    EXPECT_LE(ScaledMaxError(run.Get(n), ToF32Vector(*ref, "final." + n)), 1e-6) << n;
    EXPECT_LE(ScaledMaxError(run.Get(n + ".exp_avg"), ToF32Vector(*ref, "exp_avg." + n)), 1e-6) << n;
    EXPECT_LE(ScaledMaxError(run.Get(n + ".exp_avg_sq"), ToF32Vector(*ref, "exp_avg_sq." + n)), 1e-6) << n;
  }
}

TEST(Oracle, AdamWMatchesTorchOverTenSteps) { CheckAdamW(0.0); }
TEST(Oracle, AdamWWithGlobalNormClippingMatchesTorch) { CheckAdamW(1.0); }

}  // namespace
}  // namespace zt
