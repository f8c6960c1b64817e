// BatchSampler and EvalBatches. The token file holds token i at position i, so a row's first
// token tells which window it came from (window w starts at w * seq_len).
#include "data/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "data/temp_dir.h"
#include "data/token_file.h"

namespace zt::data {
namespace {

using testing::TempDir;

constexpr int64_t kCount = 1000;
constexpr int64_t kSeqLen = 8;
constexpr int64_t kWindows = (kCount - 1) / kSeqLen;  // 124

class SamplerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<int32_t> t(kCount);
    std::iota(t.begin(), t.end(), 0);
    path_ = dir_.File("pos.tok");
    ASSERT_TRUE(WriteTokenFile(path_, t, 2, kCount).ok());
    auto f = TokenFile::Open(path_, kCount);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    file_ = std::move(*f);
  }

  BatchSampler Make(SamplerOptions o) {
    auto s = BatchSampler::Create(*file_, o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(s).value();
  }

  // The windows of the current global batch in global-batch order, read through Fill() for every
  // (micro_step, rank) of a world of `o.world_size` samplers that share `o` but for rank. Also
  // checks the exact assignment formula and that targets are tokens shifted by one.
  std::vector<int64_t> GlobalBatch(std::vector<BatchSampler>& ranks, const SamplerOptions& o) {
    const int64_t g = o.micro_batch * o.grad_accum * o.world_size;
    std::vector<int64_t> out(static_cast<size_t>(g), -1);
    const SamplerState st = ranks[0].State();
    const auto perm = EpochPermutation(kWindows, o.seed, st.epoch);
    std::vector<int32_t> tokens, targets;
    for (int64_t r = 0; r < o.world_size; ++r) {
      EXPECT_EQ(ranks[static_cast<size_t>(r)].State(), st);
      for (int m = 0; m < o.grad_accum; ++m) {
        ranks[static_cast<size_t>(r)].Fill(m, tokens, targets);
        EXPECT_EQ(tokens.size(), static_cast<size_t>(o.micro_batch * kSeqLen));
        EXPECT_EQ(targets.size(), tokens.size());
        for (int64_t j = 0; j < o.micro_batch; ++j) {
          const int64_t w = tokens[static_cast<size_t>(j * kSeqLen)] / kSeqLen;
          const int64_t slot = (m * o.world_size + r) * o.micro_batch + j;
          EXPECT_EQ(w, perm[static_cast<size_t>(st.position * g + slot)]) << "assignment formula, slot " << slot;
          EXPECT_EQ(w, ranks[static_cast<size_t>(r)].WindowIndex(m, j));
          for (int64_t t = 0; t < kSeqLen; ++t) {
            EXPECT_EQ(tokens[static_cast<size_t>(j * kSeqLen + t)], w * kSeqLen + t);
            EXPECT_EQ(targets[static_cast<size_t>(j * kSeqLen + t)], w * kSeqLen + t + 1);
          }
          out[static_cast<size_t>(slot)] = w;
        }
      }
    }
    return out;
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<TokenFile> file_;
};

TEST(EpochPermutation, IsAPermutationAndDependsOnSeedAndEpoch) {
  auto p = EpochPermutation(1000, 3, 0);
  auto sorted = p;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(1000);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  EXPECT_NE(p, iota);
  EXPECT_EQ(EpochPermutation(1000, 3, 0), p);
  EXPECT_NE(EpochPermutation(1000, 3, 1), p);
  EXPECT_NE(EpochPermutation(1000, 4, 0), p);
  EXPECT_TRUE(EpochPermutation(0, 1, 0).empty());
  EXPECT_EQ(EpochPermutation(1, 1, 5), std::vector<int64_t>{0});
}

TEST_F(SamplerTest, SizesAndEpochLength) {
  auto s = Make({.seq_len = kSeqLen, .micro_batch = 5, .grad_accum = 2, .world_size = 1, .rank = 0, .seed = 1});
  EXPECT_EQ(s.num_windows(), kWindows);
  EXPECT_EQ(s.global_batch_windows(), 10);
  EXPECT_EQ(s.global_batches_per_epoch(), kWindows / 10);
  for (int64_t i = 0; i < s.global_batches_per_epoch() - 1; ++i) s.Advance();
  EXPECT_EQ(s.State(), (SamplerState{0, kWindows / 10 - 1}));
  s.Advance();
  EXPECT_EQ(s.State(), (SamplerState{1, 0}));
}

TEST_F(SamplerTest, DeterministicForASeed) {
  SamplerOptions o{.seq_len = kSeqLen, .micro_batch = 3, .grad_accum = 2, .world_size = 1, .rank = 0, .seed = 9};
  auto a = Make(o), b = Make(o);
  o.seed = 10;
  auto c = Make(o);
  std::vector<int32_t> ta, ya, tb, yb, tc, yc;
  bool differs = false;
  for (int step = 0; step < 50; ++step) {  // crosses two epoch boundaries (20 per epoch)
    for (int m = 0; m < 2; ++m) {
      a.Fill(m, ta, ya);
      b.Fill(m, tb, yb);
      c.Fill(m, tc, yc);
      ASSERT_EQ(ta, tb);
      ASSERT_EQ(ya, yb);
      differs |= ta != tc;
    }
    a.Advance();
    b.Advance();
    c.Advance();
  }
  EXPECT_TRUE(differs) << "seed 9 and seed 10 gave the same batches";
}

TEST_F(SamplerTest, EachEpochVisitsEveryWindowAtMostOnceInANewOrder) {
  SamplerOptions o{.seq_len = kSeqLen, .micro_batch = 4, .grad_accum = 3, .world_size = 1, .rank = 0, .seed = 2};
  std::vector<BatchSampler> ranks = {Make(o)};
  std::vector<std::vector<int64_t>> epochs;
  for (int e = 0; e < 3; ++e) {
    std::vector<int64_t> visited;
    for (int64_t i = 0; i < ranks[0].global_batches_per_epoch(); ++i) {
      ASSERT_EQ(ranks[0].State(), (SamplerState{e, i}));
      auto g = GlobalBatch(ranks, o);
      visited.insert(visited.end(), g.begin(), g.end());
      ranks[0].Advance();
    }
    EXPECT_EQ(visited.size(), static_cast<size_t>(kWindows / 12 * 12));
    EXPECT_EQ(std::set<int64_t>(visited.begin(), visited.end()).size(), visited.size())
        << "window repeated in epoch " << e;
    for (int64_t w : visited) EXPECT_TRUE(w >= 0 && w < kWindows);
    epochs.push_back(visited);
  }
  EXPECT_NE(epochs[0], epochs[1]);
  EXPECT_NE(epochs[1], epochs[2]);
}

TEST_F(SamplerTest, GlobalBatchIsTheSameForAnyWorldSize) {
  // G = micro_batch * grad_accum * world_size = 24 for every configuration.
  struct Config {
    int64_t b, k, n;
  };
  const std::vector<Config> configs = {{2, 12, 1}, {2, 6, 2}, {2, 4, 3}, {2, 3, 4}, {1, 8, 3}, {6, 1, 4}, {24, 1, 1}};
  std::vector<std::vector<int64_t>> reference;  // global batches of the first configuration
  for (const auto& c : configs) {
    SCOPED_TRACE("micro_batch " + std::to_string(c.b) + " grad_accum " + std::to_string(c.k) + " world " +
                 std::to_string(c.n));
    std::vector<BatchSampler> ranks;
    SamplerOptions o{
        .seq_len = kSeqLen, .micro_batch = c.b, .grad_accum = c.k, .world_size = c.n, .rank = 0, .seed = 4};
    for (int64_t r = 0; r < c.n; ++r) {
      o.rank = r;
      ranks.push_back(Make(o));
    }
    std::vector<std::vector<int64_t>> batches;
    for (int step = 0; step < 12; ++step) {  // 5 per epoch: crosses two epoch boundaries
      auto g = GlobalBatch(ranks, o);
      for (int64_t w : g) ASSERT_GE(w, 0) << "slot not filled";
      batches.push_back(g);
      for (auto& s : ranks) s.Advance();
    }
    if (reference.empty()) {
      reference = batches;
      continue;
    }
    for (size_t i = 0; i < batches.size(); ++i) {
      auto x = batches[i], y = reference[i];
      std::sort(x.begin(), x.end());
      std::sort(y.begin(), y.end());
      EXPECT_EQ(x, y) << "multiset of windows of global batch " << i;
      EXPECT_EQ(batches[i], reference[i]) << "window order of global batch " << i;
    }
  }
}

TEST_F(SamplerTest, RestoreContinuesIdentically) {
  SamplerOptions o{.seq_len = kSeqLen, .micro_batch = 2, .grad_accum = 2, .world_size = 2, .rank = 1, .seed = 5};
  auto a = Make(o);
  for (int i = 0; i < 37; ++i) a.Advance();  // 15 per epoch: epoch 2, position 7
  const SamplerState saved = a.State();
  EXPECT_EQ(saved, (SamplerState{2, 7}));
  auto b = Make(o);
  ASSERT_TRUE(b.Restore(saved).ok());
  EXPECT_EQ(b.State(), saved);
  std::vector<int32_t> ta, ya, tb, yb;
  for (int step = 0; step < 40; ++step) {
    for (int m = 0; m < 2; ++m) {
      a.Fill(m, ta, ya);
      b.Fill(m, tb, yb);
      ASSERT_EQ(ta, tb) << "step " << step;
      ASSERT_EQ(ya, yb) << "step " << step;
    }
    a.Advance();
    b.Advance();
    ASSERT_EQ(a.State(), b.State());
  }
  // Restoring backwards into an earlier epoch works too.
  ASSERT_TRUE(b.Restore({0, 3}).ok());
  auto c = Make(o);
  for (int i = 0; i < 3; ++i) c.Advance();
  b.Fill(1, tb, yb);
  c.Fill(1, ta, ya);
  EXPECT_EQ(ta, tb);
}

TEST_F(SamplerTest, RestoreRejectsOutOfRangeAndKeepsState) {
  auto s = Make({.seq_len = kSeqLen, .micro_batch = 4, .grad_accum = 1, .world_size = 1, .rank = 0, .seed = 1});
  s.Advance();
  const SamplerState before = s.State();
  for (SamplerState bad : {SamplerState{-1, 0}, SamplerState{0, -1}, SamplerState{0, s.global_batches_per_epoch()},
                           SamplerState{3, 1000}}) {
    Status st = s.Restore(bad);
    EXPECT_EQ(st.code(), StatusCode::kOutOfRange) << bad.epoch << "," << bad.position;
    EXPECT_NE(st.message().find("position " + std::to_string(bad.position)), std::string::npos) << st.message();
    EXPECT_EQ(s.State(), before);
  }
}

TEST_F(SamplerTest, CreateRejectsBadOptions) {
  auto err = [&](SamplerOptions o, const std::string& part) {
    auto s = BatchSampler::Create(*file_, o);
    ASSERT_FALSE(s.ok()) << part;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find(part), std::string::npos) << s.status().message();
  };
  // 1000 tokens hold 124 windows of 8; G = 125 needs 125 * 8 + 1 = 1001 tokens.
  err({.seq_len = 8, .micro_batch = 125, .grad_accum = 1, .world_size = 1, .rank = 0}, "needs at least 1001 tokens");
  err({.seq_len = 8, .micro_batch = 25, .grad_accum = 1, .world_size = 5, .rank = 5}, "rank 5");
  err({.seq_len = 0, .micro_batch = 1}, "seq_len");
  err({.seq_len = 8, .micro_batch = 0}, "micro_batch");
  err({.seq_len = 8, .micro_batch = 1, .grad_accum = 0}, "grad_accum");
  err({.seq_len = 8, .micro_batch = 1, .grad_accum = 1, .world_size = 0}, "world_size");
  // Exactly enough: 124 windows = G.
  EXPECT_TRUE(BatchSampler::Create(*file_, {.seq_len = 8, .micro_batch = 31, .grad_accum = 2, .world_size = 2}).ok());
}

TEST_F(SamplerTest, EvalBatchesAreSequential) {
  auto e = EvalBatches::Create(*file_, kSeqLen, 10, 0);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->num_batches(), kWindows / 10);
  std::vector<int32_t> tokens, targets;
  for (int64_t i = 0; i < e->num_batches(); ++i) {
    e->Fill(i, tokens, targets);
    ASSERT_EQ(tokens.size(), static_cast<size_t>(10 * kSeqLen));
    for (int64_t j = 0; j < 10 * kSeqLen; ++j) {
      EXPECT_EQ(tokens[static_cast<size_t>(j)], i * 10 * kSeqLen + j);
      EXPECT_EQ(targets[static_cast<size_t>(j)], i * 10 * kSeqLen + j + 1);
    }
  }
  auto capped = EvalBatches::Create(*file_, kSeqLen, 10, 3);
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ(capped->num_batches(), 3);
  auto too_big = EvalBatches::Create(*file_, kSeqLen, 125, 0);
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.status().message().find("1001"), std::string::npos) << too_big.status().message();
}

}  // namespace
}  // namespace zt::data
