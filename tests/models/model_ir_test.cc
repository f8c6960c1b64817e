// Whole training-step graphs of both model families survive print -> parse -> print unchanged
// (after autodiff, the AdamW step and memory planning), and verify after parsing.
#include <gtest/gtest.h>

#include "ir/autodiff.h"
#include "ir/optimizer.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "models/gpt2.h"
#include "models/llama.h"
#include "runtime/program.h"

namespace zt {
namespace {

void ExpectRoundTrip(std::unique_ptr<ir::Graph> g, const models::BuiltModel& m) {
  ASSERT_TRUE(ir::AppendBackward(*g, m.loss, m.params).ok());
  ASSERT_TRUE(ir::AppendOptimizerStep(*g, {.master_weights = true, .grad_accum = 2}).ok());
  std::string before_plan = ir::PrintGraph(*g);
  auto p = Program::Compile(std::move(g));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  for (const std::string& text : {before_plan, ir::PrintGraph((*p)->graph())}) {
    auto parsed = ir::ParseGraph(text);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_TRUE(ir::Verify(**parsed).ok());
    EXPECT_EQ(ir::PrintGraph(**parsed), text);
  }
}

TEST(ModelIr, Gpt2TrainingStepRoundTrips) {
  models::Gpt2Config c{.vocab_size = 40, .n_positions = 8, .n_embd = 16, .n_layer = 2, .n_head = 2};
  auto g = std::make_unique<ir::Graph>("gpt2");
  ir::Builder b(g.get());
  auto m = models::BuildGpt2(b, c, {.batch = 2, .seq = 8});
  ASSERT_TRUE(m.ok());
  ExpectRoundTrip(std::move(g), *m);
}

TEST(ModelIr, LlamaTrainingStepRoundTrips) {
  models::LlamaConfig c;
  c.vocab_size = 40;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 8;
  auto g = std::make_unique<ir::Graph>("llama");
  ir::Builder b(g.get());
  auto m = models::BuildLlama(b, c, {.batch = 1, .seq = 8});
  ASSERT_TRUE(m.ok());
  ExpectRoundTrip(std::move(g), *m);
}

TEST(ModelIr, BadConfigsNameTheKey) {
  models::Gpt2Config c{.vocab_size = 40, .n_positions = 8, .n_embd = 18, .n_layer = 2, .n_head = 4};
  ir::Graph g("bad");
  ir::Builder b(&g);
  auto m = models::BuildGpt2(b, c, {.batch = 1, .seq = 8});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("n_embd"), std::string::npos);
  c.n_embd = 16;
  m = models::BuildGpt2(b, c, {.batch = 1, .seq = 9});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("n_positions"), std::string::npos);
  models::LlamaConfig l;
  l.num_key_value_heads = 5;
  m = models::BuildLlama(b, l, {.batch = 1, .seq = 8});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("num_key_value_heads"), std::string::npos);
}

}  // namespace
}  // namespace zt
