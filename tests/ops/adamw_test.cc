// The CPU adamw_multi kernel against k separate adamw nodes (kernels/cpu/adamw.cc): the same
// tensors (sizes 1 to 4099, one empty), updated over five steps — plain, clipping active with a
// gradient multiplier, an overflow skip (+Inf grad_sumsq), a skip (NaN), a plain step with a new
// learning rate — give BIT-IDENTICAL parameters, moments and master weights, for f32, bf16 and
// f16 parameters, f32 and bf16 gradients, with and without master weights. The steps that are
// not skipped move every state; the skipped ones leave every bit as it was. (The values
// themselves are checked against a double-precision AdamW in tests/runtime/adamw_test.cc.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "ir/ops/adamw.h"
#include "support/adamw_graph.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::GraphRunner;

constexpr double kBeta1 = 0.9, kBeta2 = 0.95, kEps = 1e-8, kDecay = 0.1;
const std::vector<int64_t> kSizes = {1, 7, 33, 0, 1000, 4099, 8};

struct Config {
  DType param, grad;
  bool master;
};

std::string Name(const Config& c) {
  return std::string("param ") + DTypeName(c.param) + " grad " + DTypeName(c.grad) + (c.master ? " +master" : "");
}

std::string Idx(const char* role, size_t i) { return role + std::to_string(i); }

// The updates of every tensor in kSizes: as one adamw_multi node or as one adamw node each.
std::unique_ptr<ir::Graph> Build(const Config& c, bool multi) {
  testing::AdamWTensors t{c.param, c.grad, c.master, testing::IndexedSizes(kSizes)};
  t.beta1 = kBeta1;
  t.beta2 = kBeta2;
  t.eps = kEps;
  t.weight_decay = kDecay;
  return testing::BuildAdamWGraph(t, multi);
}

std::vector<float> Scalars(double lr, int t, double mult, double max_norm) {
  return {static_cast<float>(lr), static_cast<float>(1 - std::pow(kBeta1, t)), static_cast<float>(1 - std::pow(kBeta2, t)),
          static_cast<float>(mult), static_cast<float>(max_norm)};
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void RunSteps(const Config& c) {
  SCOPED_TRACE(Name(c));
  GraphRunner multi(Build(c, true)), single(Build(c, false));
  ASSERT_EQ(multi.graph().nodes().size(), 1u);
  ASSERT_EQ(single.graph().nodes().size(), kSizes.size());
  std::vector<std::string> states;
  for (size_t i = 0; i < kSizes.size(); ++i) {
    for (const char* role : {"p", "m", "v", "w"}) {
      if (role[0] == 'w' && !c.master) continue;
      states.push_back(Idx(role, i));
    }
    auto p0 = testing::RandomUniform(kSizes[i], 10 + i, -2.0f, 2.0f);
    auto m0 = testing::RandomUniform(kSizes[i], 20 + i, -0.1f, 0.1f);
    auto v0 = testing::RandomUniform(kSizes[i], 30 + i, 0.0f, 0.01f);
    for (GraphRunner* r : {&multi, &single}) {
      r->Set(Idx("p", i), p0);
      r->Set(Idx("m", i), m0);
      r->Set(Idx("v", i), v0);
      if (c.master) r->Set(Idx("w", i), testing::RoundTo(c.param, p0));
    }
  }
  struct Step {
    double lr, mult, max_norm;
    float grad_sumsq;
    bool skipped;
  };
  const float inf = std::numeric_limits<float>::infinity();
  const Step steps[] = {{1e-2, 1.0, 0.0, 4.0f, false},
                        {3e-2, 0.5, 1.0, 25.0f, false},  // true norm 2.5: clipped by 1 / (2.5 + 1e-6)
                        {3e-2, 0.5, 1.0, inf, true},
                        {3e-2, 1.0, 1.0, std::nanf(""), true},
                        {5e-3, 1.0, 100.0, 9.0f, false}};
  int t = 0;
  for (size_t k = 0; k < std::size(steps); ++k) {
    const Step& s = steps[k];
    SCOPED_TRACE("step " + std::to_string(k + 1));
    if (!s.skipped) ++t;
    for (size_t i = 0; i < kSizes.size(); ++i) {
      auto grad = testing::RoundTo(c.grad, testing::RandomUniform(kSizes[i], 100 * k + i, -1.0f, 1.0f));
      if (!grad.empty()) grad[0] = 0.0f;  // a zero gradient: only decay moves it
      multi.Set(Idx("g", i), grad);
      single.Set(Idx("g", i), grad);
    }
    for (GraphRunner* r : {&multi, &single}) {
      r->Set("s", Scalars(s.lr, std::max(t, 1), s.mult, s.max_norm));
      r->Set("ss", {s.grad_sumsq});
    }
    std::vector<std::vector<float>> before;
    for (const auto& name : states) before.push_back(multi.Get(name));
    multi.Run();
    single.Run();
    for (size_t j = 0; j < states.size(); ++j) {
      auto got = multi.Get(states[j]), want = single.Get(states[j]);
      EXPECT_TRUE(SameBits(got, want)) << states[j] << ": adamw_multi differs from adamw";
      if (got.size() < 2) continue;
      // Skipped: untouched; applied: moved.
      if (s.skipped) {
        EXPECT_TRUE(SameBits(got, before[j])) << states[j] << " changed across a skipped step";
      } else {
        int moved = 0;
        for (size_t e = 0; e < got.size(); ++e) moved += got[e] != before[j][e];
        EXPECT_GT(moved, 0) << states[j] << " did not move";
      }
    }
  }
}

TEST(AdamWMultiCpu, BitIdenticalToSeparateAdamWNodes) {
  const Config configs[] = {{DType::kF32, DType::kF32, false},  {DType::kF32, DType::kBF16, false},
                            {DType::kBF16, DType::kBF16, false}, {DType::kBF16, DType::kBF16, true},
                            {DType::kBF16, DType::kF32, true},   {DType::kF16, DType::kF32, true},
                            {DType::kF16, DType::kBF16, false}};
  for (const Config& c : configs) RunSteps(c);
}

}  // namespace
}  // namespace zt
