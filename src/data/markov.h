// A learnable synthetic corpus: an order-1 Markov chain over a vocabulary where every token has
// `branching` possible successors (a fixed random table), each equally likely. A model that has
// learned the table predicts the next token with cross-entropy ln(branching) nats, and no model
// can do better: that is the corpus's loss floor. Deterministic from the seed.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace zt::data {

class MarkovCorpus {
 public:
  MarkovCorpus(int64_t vocab, int64_t branching, uint64_t seed);

  // Fills tokens and targets (both [batch * seq], row-major): targets are tokens shifted by one.
  void Sample(int64_t batch, int64_t seq, std::mt19937_64& rng, std::vector<int32_t>& tokens,
              std::vector<int32_t>& targets) const;
  double LossFloor() const;  // ln(branching)
  int64_t vocab() const { return vocab_; }

 private:
  int64_t vocab_;
  int64_t branching_;
  std::vector<int32_t> next_;  // [vocab, branching]
};

}  // namespace zt::data
