// The padded LM head (BuildOptions::vocab_multiple): tiny GPT-2 and Llama (tied and untied) with
// V = 50 built with vocab_multiple 128 and 1 train the same model. Over three steps of plain
// gradient descent (each build updates its own parameters with its own gradients), losses and
// every parameter gradient agree to 1e-6 relative (they are bit-identical on the CPU today); the
// padded logits are the unpadded ones plus exact zeros; parameters keep their names and shapes;
// the graphs differ only in the head (concat of a zero constant, cross_entropy with classes = V);
// and the op costs of the padded step exceed the unpadded step's by exactly the padding flops the
// builder reports.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>

#include "ir/autodiff.h"
#include "models/gpt2.h"
#include "models/llama.h"
#include "runtime/program.h"
#include "support/graph_runner.h"
#include "support/torch_reference.h"

namespace zt {
namespace {

using testing::GraphRunner;
using testing::ScaledMaxError;

constexpr int64_t kVocab = 50, kBatch = 2, kSeq = 6;
constexpr int kSteps = 3;
constexpr float kLr = 0.5f;

using BuildFn = std::function<StatusOr<models::BuiltModel>(ir::Builder&, const models::BuildOptions&)>;

struct Trace {
  models::BuiltModel built;                  // its value pointers are dangling after Train
  Shape logits_shape;
  std::map<std::string, Shape> param_shapes;
  std::vector<float> losses;
  std::vector<std::map<std::string, std::vector<float>>> grads;  // per step
  std::vector<std::vector<float>> logits;                        // per step, [B, T, padded_vocab]
  double flops_forward = 0, flops_backward = 0;                  // op costs of the step graph
  int concat_nodes = 0;
  int64_t ce_classes = -1, ce_bwd_classes = -1;
};

Trace Train(const BuildFn& build, int64_t multiple) {
  Trace tr;
  auto g = std::make_unique<ir::Graph>("model");
  ir::Builder b(g.get());
  auto m = build(b, {.batch = kBatch, .seq = kSeq, .vocab_multiple = multiple});
  ZT_CHECK(m.ok()) << m.status().ToString();
  tr.built = *m;
  tr.logits_shape = m->logits->shape;
  ZT_CHECK_OK(ir::AppendBackward(*g, m->loss, m->params));
  g->outputs().push_back(m->logits);
  std::vector<std::string> names;
  for (ir::Value* p : m->params) {
    names.push_back(p->name);
    tr.param_shapes[p->name] = p->shape;
  }
  for (const auto& n : g->nodes()) {
    if (n->op->name == "concat") ++tr.concat_nodes;
    if (n->op->name == "cross_entropy") tr.ce_classes = n->attrs.GetInt("classes");
    if (n->op->name == "cross_entropy_bwd") tr.ce_bwd_classes = n->attrs.GetInt("classes");
  }
  GraphRunner run(std::move(g));
  tr.flops_forward = run.program().flops(ir::Phase::kForward);
  tr.flops_backward = run.program().flops(ir::Phase::kBackward);
  std::map<std::string, std::vector<float>> params;
  for (size_t i = 0; i < names.size(); ++i) {
    const int64_t n = tr.param_shapes[names[i]].numel();
    params[names[i]] = testing::RandomUniform(n, 1000 + i, -0.3f, 0.3f);
  }
  // One batch, seen every step (so the loss must fall).
  auto tokens = testing::RandomInts(kBatch * kSeq, 10, 0, kVocab);
  auto targets = testing::RandomInts(kBatch * kSeq, 20, 0, kVocab);
  targets[3] = -100;        // an ignored position
  targets[4] = kVocab - 1;  // the last real token, next to the padding
  for (int step = 0; step < kSteps; ++step) {
    for (const auto& [name, v] : params) run.Set(name, v);
    run.SetInts("tokens", tokens);
    run.SetInts("targets", targets);
    run.Run();
    tr.losses.push_back(run.Get(tr.built.loss->name)[0]);
    tr.logits.push_back(run.Get(tr.built.logits->name));
    std::map<std::string, std::vector<float>> grads;
    for (const auto& name : names) {
      const ir::Value* gv = run.graph().GradOf(run.value(name));
      ZT_CHECK(gv != nullptr) << name;
      grads[name] = run.Get(gv);
      std::vector<float>& p = params[name];
      for (size_t i = 0; i < p.size(); ++i) p[i] -= kLr * grads[name][i];
    }
    tr.grads.push_back(std::move(grads));
  }
  return tr;
}

void ExpectSameTraining(const BuildFn& build) {
  Trace plain = Train(build, 1);
  Trace padded = Train(build, 128);

  // Shapes and bookkeeping.
  EXPECT_EQ(plain.built.vocab, kVocab);
  EXPECT_EQ(plain.built.padded_vocab, kVocab);
  EXPECT_EQ(padded.built.vocab, kVocab);
  EXPECT_EQ(padded.built.padded_vocab, 128);
  EXPECT_EQ(plain.logits_shape, (Shape{kBatch, kSeq, kVocab}));
  EXPECT_EQ(padded.logits_shape, (Shape{kBatch, kSeq, 128}));
  EXPECT_EQ(plain.param_shapes, padded.param_shapes) << "padding must not change any parameter";
  EXPECT_EQ(plain.concat_nodes + 1, padded.concat_nodes);
  EXPECT_EQ(padded.ce_classes, kVocab);
  EXPECT_EQ(padded.ce_bwd_classes, kVocab);
  EXPECT_EQ(plain.built.padding_flops_forward, 0.0);
  EXPECT_EQ(plain.built.padding_flops_backward, 0.0);
  // Op costs: the padded step costs exactly the reported padding more; TFLOP/s subtract it.
  EXPECT_GT(padded.built.padding_flops_forward, 0.0);
  EXPECT_DOUBLE_EQ(padded.flops_forward - padded.built.padding_flops_forward, plain.flops_forward);
  EXPECT_DOUBLE_EQ(padded.flops_backward - padded.built.padding_flops_backward, plain.flops_backward);

  // The same training, step by step.
  for (int step = 0; step < kSteps; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    EXPECT_NEAR(padded.losses[step], plain.losses[step], 1e-6 * (1 + std::fabs(plain.losses[step])));
    const auto& lp = padded.logits[step];
    const auto& lu = plain.logits[step];
    std::vector<float> first_columns;
    for (int64_t r = 0; r < kBatch * kSeq; ++r) {
      for (int64_t j = 0; j < 128; ++j) {
        if (j < kVocab) {
          first_columns.push_back(lp[r * 128 + j]);
        } else {
          ASSERT_EQ(lp[r * 128 + j], 0.0f) << "padding logit, row " << r << " col " << j;
        }
      }
    }
    EXPECT_LE(ScaledMaxError(first_columns, lu), 1e-6) << "logits";
    for (const auto& [name, g] : plain.grads[step]) {
      const auto& gp = padded.grads[step].at(name);
      ASSERT_EQ(gp.size(), g.size()) << name;
      EXPECT_LE(ScaledMaxError(gp, g), 1e-6) << "gradient of " << name;
    }
  }
  EXPECT_LT(plain.losses.back(), plain.losses.front()) << "the steps must train";
}

TEST(VocabPadding, Gpt2SameTrainingPaddedOrNot) {
  models::Gpt2Config c{.vocab_size = kVocab, .n_positions = 8, .n_embd = 16, .n_layer = 2, .n_head = 2};
  ExpectSameTraining([c](ir::Builder& b, const models::BuildOptions& o) { return models::BuildGpt2(b, c, o); });
}

models::LlamaConfig TinyLlama(bool tied) {
  models::LlamaConfig c;
  c.vocab_size = kVocab;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 8;
  c.tie_word_embeddings = tied;
  return c;
}

TEST(VocabPadding, LlamaUntiedSameTrainingPaddedOrNot) {
  models::LlamaConfig c = TinyLlama(false);
  ExpectSameTraining([c](ir::Builder& b, const models::BuildOptions& o) { return models::BuildLlama(b, c, o); });
}

TEST(VocabPadding, LlamaTiedSameTrainingPaddedOrNot) {
  models::LlamaConfig c = TinyLlama(true);
  ExpectSameTraining([c](ir::Builder& b, const models::BuildOptions& o) { return models::BuildLlama(b, c, o); });
}

// A vocabulary that is already a multiple is not padded (no concat, logits [.., V]); the default
// multiple is 128; a multiple below 1 is an error naming the option.
TEST(VocabPadding, MultiplesAndDefaults) {
  EXPECT_EQ(models::BuildOptions{}.vocab_multiple, 128);
  EXPECT_EQ(models::PaddedVocab(50257, 128), 50304);
  EXPECT_EQ(models::PaddedVocab(128256, 128), 128256);
  EXPECT_EQ(models::PaddedVocab(50, 1), 50);
  models::Gpt2Config c{.vocab_size = 256, .n_positions = 8, .n_embd = 16, .n_layer = 1, .n_head = 2};
  {
    ir::Graph g("gpt2");
    ir::Builder b(&g);
    auto m = models::BuildGpt2(b, c, {.batch = 1, .seq = 4});
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->logits->shape, (Shape{1, 4, 256}));
    EXPECT_EQ(m->padded_vocab, 256);
    for (const auto& n : g.nodes()) EXPECT_NE(n->op->name, "concat");
  }
  for (int64_t bad : {int64_t{0}, int64_t{-128}}) {
    ir::Graph g("gpt2");
    ir::Builder b(&g);
    auto m = models::BuildGpt2(b, c, {.batch = 1, .seq = 4, .vocab_multiple = bad});
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.status().message().find("vocab_multiple"), std::string::npos) << m.status().message();
    models::LlamaConfig l = TinyLlama(false);
    auto ml = models::BuildLlama(b, l, {.batch = 1, .seq = 4, .vocab_multiple = bad});
    ASSERT_FALSE(ml.ok());
    EXPECT_NE(ml.status().message().find("vocab_multiple"), std::string::npos) << ml.status().message();
  }
}

}  // namespace
}  // namespace zt
