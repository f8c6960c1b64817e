// Deterministic distributed sampling of training windows from a TokenFile.
//
// A window is seq_len + 1 consecutive tokens starting at w * seq_len (tokens = window[0:T],
// targets = window[1:T+1]); there are (count - 1) / seq_len of them. Each epoch visits every
// window once in an order that depends only on (seed, epoch) (splitmix64 + Fisher-Yates, the same
// on every platform). A global batch is G = micro_batch * grad_accum * world_size consecutive
// windows of that order; an epoch is floor(num_windows / G) global batches (the remainder is
// dropped). Rank r's micro-step m reads windows [(m * world_size + r) * micro_batch, +micro_batch)
// of the global batch.
// Invariant: the global batch — the union over ranks and micro-steps — depends on (file, seq_len,
// G, seed, epoch, position) only, not on how G is split into world_size and grad_accum; and
// State() / Restore() reproduce the exact sequence.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "data/token_file.h"

namespace zt::data {

struct SamplerOptions {
  int64_t seq_len = 0;      // T
  int64_t micro_batch = 0;  // b: windows per rank per micro-step
  int64_t grad_accum = 1;   // k: micro-steps per optimizer step
  int64_t world_size = 1;   // N
  int64_t rank = 0;         // r in [0, N)
  uint64_t seed = 0;
};

struct SamplerState {
  int64_t epoch = 0;
  int64_t position = 0;  // global batches consumed in this epoch
  bool operator==(const SamplerState&) const = default;
};

// The order of windows [0, num_windows) in `epoch` for `seed`: a permutation.
std::vector<int64_t> EpochPermutation(int64_t num_windows, uint64_t seed, int64_t epoch);

class BatchSampler {
 public:
  // `file` must outlive the sampler. Errors: bad options, or too few tokens for one global batch.
  static StatusOr<BatchSampler> Create(const TokenFile& file, const SamplerOptions& options);

  // Fills this rank's micro-batch `micro_step` (in [0, grad_accum)) of the current global batch:
  // tokens and targets are resized to micro_batch * seq_len, row-major.
  void Fill(int micro_step, std::vector<int32_t>& tokens, std::vector<int32_t>& targets) const;
  // Moves to the next global batch; after the epoch's last one, to the first of the next epoch.
  void Advance();

  SamplerState State() const { return state_; }
  // Continues from a state saved by State(); OutOfRange if epoch < 0 or position is not in
  // [0, global_batches_per_epoch()).
  Status Restore(SamplerState state);

  int64_t global_batches_per_epoch() const { return num_windows_ / global_windows_; }
  int64_t num_windows() const { return num_windows_; }
  int64_t global_batch_windows() const { return global_windows_; }  // G
  // Index (into the file's windows) of row `row` of micro-batch `micro_step` for this rank.
  int64_t WindowIndex(int micro_step, int64_t row) const;

 private:
  BatchSampler(const TokenFile& file, const SamplerOptions& o, int64_t num_windows);
  void SetEpoch(int64_t epoch);

  const TokenFile* file_;
  SamplerOptions options_;
  int64_t num_windows_;
  int64_t global_windows_;
  SamplerState state_;
  std::vector<int64_t> order_;  // permutation of windows for state_.epoch
};

// Evaluation batches: windows in file order (no shuffling), batch i = windows [i*batch, +batch).
// num_batches() = min(max_batches, num_windows / batch); max_batches <= 0 means all full batches.
class EvalBatches {
 public:
  static StatusOr<EvalBatches> Create(const TokenFile& file, int64_t seq_len, int64_t batch, int64_t max_batches);
  int64_t num_batches() const { return num_batches_; }
  // Fills batch i (in [0, num_batches())): tokens and targets resized to batch * seq_len.
  void Fill(int64_t i, std::vector<int32_t>& tokens, std::vector<int32_t>& targets) const;

 private:
  EvalBatches(const TokenFile& file, int64_t seq_len, int64_t batch, int64_t num_batches)
      : file_(&file), seq_len_(seq_len), batch_(batch), num_batches_(num_batches) {}
  const TokenFile* file_;
  int64_t seq_len_;
  int64_t batch_;
  int64_t num_batches_;
};

}  // namespace zt::data
