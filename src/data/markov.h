// A learnable synthetic corpus: an order-1 Markov chain over a vocabulary where every token has
// `branching` possible successors (a fixed random table), each equally likely. A model that has
// learned the table predicts the next token with cross-entropy ln(branching) nats, and no model
// can do better: that is the corpus's loss floor (docs/data.md). The table is a function of the
// table seed alone; the walks (Generate) take their own randomness, so one table can
// produce many independent chains (a train and an eval split with the same floor).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace zt::data {

class MarkovCorpus {
 public:
  // CHECKs 0 < branching <= vocab <= 2^31 (validate input from outside before calling).
  MarkovCorpus(int64_t vocab, int64_t branching, uint64_t table_seed);

  // One continuous walk of n tokens: a uniformly random start, then n - 1 transitions, all drawn
  // from a generator seeded with walk_seed (std::mt19937_64, so identical on every platform).
  std::vector<int32_t> Generate(int64_t n, uint64_t walk_seed) const;

  double LossFloor() const;  // ln(branching)
  int64_t vocab() const { return vocab_; }
  int64_t branching() const { return branching_; }
  // The `branching` distinct successors of token v, in table order.
  std::span<const int32_t> Successors(int32_t v) const;

 private:
  int64_t vocab_;
  int64_t branching_;
  std::vector<int32_t> next_;  // [vocab, branching]
};

}  // namespace zt::data
