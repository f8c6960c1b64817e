// Markov synthetic data: the table is what it always was for a seed, chains obey it, the
// empirical next-token entropy of a long chain is ln(branching), and synth's train and eval files
// share the table but not the walk.
#include "data/synth.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "data/markov.h"
#include "data/temp_dir.h"
#include "data/token_file.h"

namespace zt::data {
namespace {

using testing::ReadBytes;
using testing::TempDir;

// The original construction (before Generate existed): a linear duplicate scan. The table for a
// seed must not change, or `ztrain demo` would train on different data than before.
std::vector<int32_t> ReferenceTable(int64_t vocab, int64_t branching, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> next(static_cast<size_t>(vocab * branching));
  for (int64_t v = 0; v < vocab; ++v) {
    for (int64_t j = 0; j < branching; ++j) {
      int32_t cand;
      bool dup;
      do {
        cand = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
        dup = false;
        for (int64_t i = 0; i < j; ++i) dup |= next[v * branching + i] == cand;
      } while (dup);
      next[v * branching + j] = cand;
    }
  }
  return next;
}

void ExpectObeysTable(const MarkovCorpus& c, const std::vector<int32_t>& chain) {
  for (size_t i = 0; i < chain.size(); ++i) ASSERT_TRUE(chain[i] >= 0 && chain[i] < c.vocab()) << i;
  for (size_t i = 0; i + 1 < chain.size(); ++i) {
    auto succ = c.Successors(chain[i]);
    ASSERT_NE(std::find(succ.begin(), succ.end(), chain[i + 1]), succ.end())
        << "transition " << chain[i] << " -> " << chain[i + 1] << " at index " << i << " is not in the table";
  }
}

// H(next | current) in nats, estimated from transition counts.
double ConditionalEntropy(const std::vector<int32_t>& chain) {
  std::map<int32_t, std::map<int32_t, int64_t>> counts;
  for (size_t i = 0; i + 1 < chain.size(); ++i) ++counts[chain[i]][chain[i + 1]];
  double h = 0;
  const double total = static_cast<double>(chain.size() - 1);
  for (const auto& [cur, nexts] : counts) {
    int64_t n = 0;
    for (const auto& kv : nexts) n += kv.second;
    for (const auto& kv : nexts) {
      double p = static_cast<double>(kv.second) / static_cast<double>(n);
      h -= static_cast<double>(kv.second) / total * std::log(p);
    }
  }
  return h;
}

std::vector<int32_t> ReadAll(const TokenFile& f) {
  std::vector<int32_t> t(static_cast<size_t>(f.size()));
  f.Read(0, f.size(), t.data());
  return t;
}

TEST(Markov, TableIsUnchangedForASeed) {
  for (auto [v, k, seed] : {std::tuple<int64_t, int64_t, uint64_t>{64, 2, 1}, {37, 5, 9}, {20, 20, 3}, {1, 1, 0}}) {
    MarkovCorpus c(v, k, seed);
    auto ref = ReferenceTable(v, k, seed);
    for (int32_t t = 0; t < v; ++t) {
      auto s = c.Successors(t);
      ASSERT_EQ(std::vector<int32_t>(s.begin(), s.end()),
                std::vector<int32_t>(ref.begin() + t * k, ref.begin() + (t + 1) * k))
          << "vocab " << v << " branching " << k << " seed " << seed << " token " << t;
      EXPECT_EQ(std::set<int32_t>(s.begin(), s.end()).size(), static_cast<size_t>(k)) << "successors not distinct";
    }
  }
}

TEST(Markov, GenerateObeysTableAndIsDeterministic) {
  MarkovCorpus c(50, 3, 11);
  auto a = c.Generate(20000, 5);
  ASSERT_EQ(a.size(), 20000u);
  ExpectObeysTable(c, a);
  EXPECT_EQ(c.Generate(20000, 5), a);
  auto b = c.Generate(20000, 6);
  EXPECT_NE(b, a) << "different walk seeds gave the same chain";
  ExpectObeysTable(c, b);
  EXPECT_TRUE(c.Generate(0, 1).empty());
  EXPECT_EQ(c.Generate(1, 5), std::vector<int32_t>{a[0]});
}

TEST(Markov, EmpiricalEntropyOfLongChainIsLnBranching) {
  for (int64_t k : {1, 2, 4, 7}) {
    MarkovCorpus c(16, k, 100 + static_cast<uint64_t>(k));
    auto chain = c.Generate(400000, 7);
    double h = ConditionalEntropy(chain);
    EXPECT_NEAR(h, std::log(static_cast<double>(k)), 0.01) << "branching " << k;
    EXPECT_NEAR(c.LossFloor(), std::log(static_cast<double>(k)), 1e-12);
  }
}

TEST(Synth, WritesTrainAndEvalWithSharedTableAndSidecars) {
  TempDir dir;
  MarkovSynthOptions o;
  o.out = dir.File("train.tok");
  o.eval_out = dir.File("eval.tok");
  o.vocab = 40;
  o.tokens = 30000;
  o.eval_tokens = 5000;
  o.branching = 3;
  o.seed = 17;
  auto r = WriteMarkovSynth(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NEAR(r->loss_floor, std::log(3.0), 1e-12);
  EXPECT_EQ(r->token_size, 2);
  ASSERT_EQ(r->files.size(), 2u);
  EXPECT_NE(r->files[0].walk_seed, r->files[1].walk_seed);

  auto train = TokenFile::Open(o.out, 40);
  auto eval = TokenFile::Open(o.eval_out, 40);
  ASSERT_TRUE(train.ok()) << train.status().ToString();
  ASSERT_TRUE(eval.ok()) << eval.status().ToString();
  EXPECT_EQ((*train)->size(), 30000);
  EXPECT_EQ((*eval)->size(), 5000);
  EXPECT_EQ((*train)->recorded_vocab(), 40);

  MarkovCorpus table(40, 3, 17);  // the table synth must have used for both files
  auto tr = ReadAll(**train), ev = ReadAll(**eval);
  ExpectObeysTable(table, tr);
  ExpectObeysTable(table, ev);
  EXPECT_NE(std::vector<int32_t>(tr.begin(), tr.begin() + 5000), ev) << "eval repeats the train walk";
  EXPECT_EQ(tr, table.Generate(30000, MarkovWalkSeed(17, 0)));
  EXPECT_EQ(ev, table.Generate(5000, MarkovWalkSeed(17, 1)));
  EXPECT_NEAR(ConditionalEntropy(ev), std::log(3.0), 0.05);

  for (const auto& [path, tokens, split] :
       {std::tuple<std::string, int64_t, std::string>{o.out, 30000, "train"}, {o.eval_out, 5000, "eval"}}) {
    auto j = nlohmann::json::parse(ReadBytes(path + ".json"));
    EXPECT_EQ(j["kind"], "markov");
    EXPECT_EQ(j["vocab"], 40);
    EXPECT_EQ(j["branching"], 3);
    EXPECT_EQ(j["seed"], 17);
    EXPECT_EQ(j["tokens"], tokens);
    EXPECT_NEAR(j["loss_floor"].get<double>(), std::log(3.0), 1e-12);
    EXPECT_EQ(j["split"], split);
    EXPECT_EQ(j["token_size"], 2);
  }
}

TEST(Synth, IsDeterministicAndUsesU32ForLargeVocab) {
  TempDir dir;
  MarkovSynthOptions o;
  o.out = dir.File("a.tok");
  o.vocab = 70000;
  o.tokens = 3000;
  o.seed = 5;
  auto r = WriteMarkovSynth(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->token_size, 4);
  std::string first = ReadBytes(o.out);
  EXPECT_EQ(first.size(), 64u + 4u * 3000u);
  ASSERT_TRUE(WriteMarkovSynth(o).ok());
  EXPECT_EQ(ReadBytes(o.out), first);
  auto f = TokenFile::Open(o.out, 70000);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ExpectObeysTable(MarkovCorpus(70000, 2, 5), ReadAll(**f));
}

TEST(Synth, RejectsBadOptionsWithoutWriting) {
  TempDir dir;
  auto expect_error = [&](MarkovSynthOptions o, const std::string& part) {
    o.out = dir.File("x.tok");
    auto r = WriteMarkovSynth(o);
    ASSERT_FALSE(r.ok()) << part;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(part), std::string::npos) << r.status().message();
    EXPECT_FALSE(std::filesystem::exists(o.out));
  };
  expect_error({.vocab = 10, .tokens = 100, .branching = 11}, "--branching 11");
  expect_error({.vocab = 10, .tokens = 100, .branching = 0}, "--branching 0");
  expect_error({.vocab = 0, .tokens = 100}, "--vocab 0");
  expect_error({.vocab = 10, .tokens = 0}, "--tokens 0");
  expect_error({.vocab = 1 << 20, .tokens = 10, .branching = 1 << 10}, "2^27");
  expect_error({.vocab = 10, .tokens = 100, .eval_out = dir.File("e.tok")}, "--eval-tokens");
  expect_error({.vocab = 10, .tokens = 100, .eval_tokens = 5}, "--eval-out");
}

}  // namespace
}  // namespace zt::data
