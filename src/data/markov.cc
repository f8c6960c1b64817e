// Markov-chain synthetic corpus.
#include "data/markov.h"

#include <cmath>

#include "core/check.h"

namespace zt::data {

MarkovCorpus::MarkovCorpus(int64_t vocab, int64_t branching, uint64_t seed)
    : vocab_(vocab), branching_(branching) {
  ZT_CHECK(vocab > 0 && branching > 0 && branching <= vocab);
  std::mt19937_64 rng(seed);
  next_.resize(static_cast<size_t>(vocab * branching));
  for (int64_t v = 0; v < vocab; ++v) {
    // `branching` distinct successors for v.
    for (int64_t j = 0; j < branching; ++j) {
      int32_t cand;
      bool dup;
      do {
        cand = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
        dup = false;
        for (int64_t i = 0; i < j; ++i) dup |= next_[v * branching + i] == cand;
      } while (dup);
      next_[v * branching + j] = cand;
    }
  }
}

void MarkovCorpus::Sample(int64_t batch, int64_t seq, std::mt19937_64& rng, std::vector<int32_t>& tokens,
                          std::vector<int32_t>& targets) const {
  tokens.resize(static_cast<size_t>(batch * seq));
  targets.resize(static_cast<size_t>(batch * seq));
  for (int64_t b = 0; b < batch; ++b) {
    int32_t cur = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab_));
    for (int64_t t = 0; t < seq; ++t) {
      int32_t nxt = next_[cur * branching_ + static_cast<int64_t>(rng() % static_cast<uint64_t>(branching_))];
      tokens[b * seq + t] = cur;
      targets[b * seq + t] = nxt;
      cur = nxt;
    }
  }
}

double MarkovCorpus::LossFloor() const { return std::log(static_cast<double>(branching_)); }

}  // namespace zt::data
