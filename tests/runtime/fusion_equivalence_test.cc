// The fusion passes (passes/fusion.h) change how the step computes its values, never the values:
// a tiny GPT-2 and a tiny Llama trained for a few steps with ZT_FUSION=all and with ZT_FUSION=0
// give BIT-IDENTICAL losses, gradient norms and parameters, for every precision, ZeRO stage (one
// rank) and with gradient accumulation. The fused program must also be a different program:
// fewer nodes than the unfused one, with the op counts listed in the failure message.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
#include <string>

#include "backend/cpu/cpu_backend.h"
#include "models/gpt2.h"
#include "models/init.h"
#include "models/llama.h"
#include "runtime/engine.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

constexpr int64_t kVocab = 40, kSeq = 8, kMicro = 2, kSteps = 4;

DType ParamDType(config::Precision p) {
  return p == config::Precision::kBF16 ? DType::kBF16 : p == config::Precision::kF16 ? DType::kF16 : DType::kF32;
}

struct Case {
  std::string model;  // "gpt2" or "llama"
  config::Precision precision;
  int stage;
  int64_t accum;
};

struct TrainResult {
  std::vector<double> losses, norms;
  std::vector<float> params;
  std::map<std::string, int> ops;  // op name -> nodes in the compiled step
  size_t nodes = 0;
};

StatusOr<models::BuiltModel> Build(ir::Builder& b, const Case& c) {
  models::BuildOptions bo{.batch = kMicro, .seq = kSeq, .dtype = ParamDType(c.precision)};
  if (c.model == "gpt2") {
    models::Gpt2Config g;
    g.vocab_size = kVocab;
    g.n_positions = kSeq;
    g.n_embd = 16;
    g.n_layer = 2;
    g.n_head = 2;
    return models::BuildGpt2(b, g, bo);
  }
  models::LlamaConfig l;
  l.vocab_size = kVocab;
  l.hidden_size = 16;
  l.intermediate_size = 24;
  l.num_hidden_layers = 2;
  l.num_attention_heads = 4;
  l.num_key_value_heads = 2;
  l.max_position_embeddings = kSeq;
  return models::BuildLlama(b, l, bo);
}

TrainResult Train(const Case& c, bool fusion) {
  ZT_CHECK(setenv("ZT_FUSION", fusion ? "all" : "0", 1) == 0);
  auto g = std::make_unique<ir::Graph>(c.model);
  ir::Builder b(g.get());
  auto m = Build(b, c);
  ZT_CHECK(m.ok()) << m.status().ToString();
  EngineOptions o;
  o.precision = c.precision;
  o.zero_stage = c.stage;
  o.grad_accum = c.accum;
  o.gradient_clipping = 1.0;
  o.optimizer.lr = 1e-2;
  o.optimizer.weight_decay = 0.1;
  o.no_decay_for_vectors = true;  // two weight-decay groups
  o.bucket_elements = 400;        // several ZeRO units
  CpuBackend backend;
  auto e = Engine::Create(std::move(g), {m->tokens, m->targets, m->loss}, o, backend);
  unsetenv("ZT_FUSION");
  ZT_CHECK(e.ok()) << e.status().ToString();
  Engine& engine = **e;
  ZT_CHECK_OK(engine.InitParams([](const std::string& name, const Tensor& t) {
    models::InitParam(name, t, {.std = 0.1, .n_layer = 2, .seed = 5});
  }));
  TrainResult r;
  for (const auto& n : engine.program().graph().nodes()) r.ops[n->op->name]++;
  r.nodes = engine.program().graph().nodes().size();
  for (int64_t s = 0; s < kSteps; ++s) {
    auto st = engine.TrainStep([&](int micro, std::vector<int32_t>& tok, std::vector<int32_t>& tgt) {
      auto ids = testing::RandomInts(kMicro * kSeq + 1, 100 * s + micro, 0, kVocab);
      tok.assign(ids.begin(), ids.end() - 1);
      tgt.assign(ids.begin() + 1, ids.end());
    });
    ZT_CHECK(st.ok()) << st.status().ToString();
    r.losses.push_back(st->loss);
    r.norms.push_back(st->grad_norm);
  }
  ZT_CHECK_OK(engine.ReadParams([&](const std::string&, const Tensor& t) {
    r.params.insert(r.params.end(), t.as<float>(), t.as<float>() + t.numel());
  }));
  return r;
}

std::string OpCounts(const TrainResult& r) {
  std::string s;
  for (auto& [op, n] : r.ops) s += op + " " + std::to_string(n) + ", ";
  return s;
}

class FusionEquivalence : public ::testing::TestWithParam<Case> {};

TEST_P(FusionEquivalence, FusedStepTrainsBitIdentically) {
  const Case& c = GetParam();
  TrainResult fused = Train(c, true);
  TrainResult plain = Train(c, false);
  EXPECT_EQ(fused.losses, plain.losses);
  EXPECT_EQ(fused.norms, plain.norms);
  ASSERT_EQ(fused.params.size(), plain.params.size());
  size_t differing = 0;
  for (size_t i = 0; i < plain.params.size(); ++i) differing += fused.params[i] != plain.params[i];
  EXPECT_EQ(differing, 0u) << "of " << plain.params.size() << " parameter elements";
  EXPECT_LE(fused.nodes, plain.nodes) << "fused: " << OpCounts(fused) << "\nunfused: " << OpCounts(plain);
  // Training moved the parameters (the comparison is not between two untouched models).
  EXPECT_NE(plain.losses.front(), plain.losses.back());
}

std::vector<Case> Cases() {
  std::vector<Case> out;
  for (const char* model : {"gpt2", "llama"}) {
    for (auto p : {config::Precision::kF32, config::Precision::kBF16, config::Precision::kF16}) {
      for (int stage : {0, 3}) out.push_back({model, p, stage, 1});
    }
    out.push_back({model, config::Precision::kBF16, 1, 2});
    out.push_back({model, config::Precision::kF32, 2, 2});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(ModelsPrecisionsStages, FusionEquivalence, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return i.param.model + "_" + config::PrecisionName(i.param.precision) + "_stage" +
                                  std::to_string(i.param.stage) + "_accum" + std::to_string(i.param.accum);
                         });

}  // namespace
}  // namespace zt
