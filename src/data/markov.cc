// Markov-chain synthetic corpus. The table is built by rejection sampling from mt19937_64 (a
// fixed sequence for a seed), so a seed names the same table on every platform and in every
// version that keeps this construction.
#include "data/markov.h"

#include <cmath>

#include "core/check.h"

namespace zt::data {

MarkovCorpus::MarkovCorpus(int64_t vocab, int64_t branching, uint64_t table_seed)
    : vocab_(vocab), branching_(branching) {
  ZT_CHECK(vocab > 0 && branching > 0 && branching <= vocab && vocab <= (int64_t{1} << 31));
  std::mt19937_64 rng(table_seed);
  next_.resize(static_cast<size_t>(vocab * branching));
  // seen[c] marks the successors already drawn for the current token; cleared after each token,
  // so the duplicate check is O(1) and the total cost does not grow with vocab^2.
  std::vector<uint8_t> seen(static_cast<size_t>(vocab), 0);
  for (int64_t v = 0; v < vocab; ++v) {
    int32_t* row = next_.data() + v * branching;
    // `branching` distinct successors for v.
    for (int64_t j = 0; j < branching; ++j) {
      int32_t cand;
      do {
        cand = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
      } while (seen[cand]);
      seen[cand] = 1;
      row[j] = cand;
    }
    for (int64_t j = 0; j < branching; ++j) seen[row[j]] = 0;
  }
}

std::vector<int32_t> MarkovCorpus::Generate(int64_t n, uint64_t walk_seed) const {
  ZT_CHECK_GE(n, 0);
  std::vector<int32_t> out(static_cast<size_t>(n));
  if (n == 0) return out;
  std::mt19937_64 rng(walk_seed);
  int32_t cur = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab_));
  out[0] = cur;
  for (int64_t i = 1; i < n; ++i) {
    cur = next_[cur * branching_ + static_cast<int64_t>(rng() % static_cast<uint64_t>(branching_))];
    out[static_cast<size_t>(i)] = cur;
  }
  return out;
}

std::span<const int32_t> MarkovCorpus::Successors(int32_t v) const {
  ZT_CHECK(v >= 0 && v < vocab_) << "token " << v << " outside vocab " << vocab_;
  return {next_.data() + static_cast<int64_t>(v) * branching_, static_cast<size_t>(branching_)};
}

double MarkovCorpus::LossFloor() const { return std::log(static_cast<double>(branching_)); }

}  // namespace zt::data
