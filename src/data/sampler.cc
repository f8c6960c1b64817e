// BatchSampler and EvalBatches. The shuffle uses only integer arithmetic defined here (splitmix64,
// rejection-sampled bounded draws, Fisher-Yates), never <random> distributions or std::shuffle,
// whose results differ between standard libraries.
#include "data/sampler.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

namespace zt::data {
namespace {

uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// splitmix64 (Steele, Lea, Flood 2014): a 64-bit counter passed through Mix64.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t state) : state_(state) {}
  uint64_t Next() { return Mix64(state_ += 0x9E3779B97F4A7C15ull); }
  // Uniform in [0, n) without modulo bias: reject draws below 2^64 mod n.
  uint64_t Below(uint64_t n) {
    const uint64_t threshold = (0 - n) % n;
    for (;;) {
      uint64_t x = Next();
      if (x >= threshold) return x % n;
    }
  }

 private:
  uint64_t state_;
};

std::string Str(int64_t v) { return std::to_string(v); }

}  // namespace

std::vector<int64_t> EpochPermutation(int64_t num_windows, uint64_t seed, int64_t epoch) {
  ZT_CHECK_GE(num_windows, 0);
  std::vector<int64_t> order(static_cast<size_t>(num_windows));
  std::iota(order.begin(), order.end(), int64_t{0});
  SplitMix64 rng(Mix64(Mix64(seed) + static_cast<uint64_t>(epoch)));
  for (int64_t i = num_windows - 1; i > 0; --i) {
    int64_t j = static_cast<int64_t>(rng.Below(static_cast<uint64_t>(i) + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

BatchSampler::BatchSampler(const TokenFile& file, const SamplerOptions& o, int64_t num_windows)
    : file_(&file),
      options_(o),
      num_windows_(num_windows),
      global_windows_(o.micro_batch * o.grad_accum * o.world_size) {
  SetEpoch(0);
}

StatusOr<BatchSampler> BatchSampler::Create(const TokenFile& file, const SamplerOptions& o) {
  auto positive = [&](int64_t v, const char* name) -> Status {
    if (v < 1) return InvalidArgument(std::string("sampler: ") + name + " is " + Str(v) + "; it must be >= 1");
    return OkStatus();
  };
  ZT_RETURN_IF_ERROR(positive(o.seq_len, "seq_len"));
  ZT_RETURN_IF_ERROR(positive(o.micro_batch, "micro_batch"));
  ZT_RETURN_IF_ERROR(positive(o.grad_accum, "grad_accum"));
  ZT_RETURN_IF_ERROR(positive(o.world_size, "world_size"));
  if (o.rank < 0 || o.rank >= o.world_size)
    return InvalidArgument("sampler: rank " + Str(o.rank) + " is outside [0, world_size " + Str(o.world_size) + ")");
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (o.micro_batch > kMax / o.grad_accum || o.micro_batch * o.grad_accum > kMax / o.world_size)
    return InvalidArgument("sampler: micro_batch * grad_accum * world_size overflows");
  const int64_t g = o.micro_batch * o.grad_accum * o.world_size;
  const int64_t count = file.size();
  const int64_t num_windows = count >= 1 ? (count - 1) / o.seq_len : 0;
  if (num_windows < g) {
    std::string needed = g > (kMax - 1) / o.seq_len ? "more than 2^63" : Str(g * o.seq_len + 1);
    return InvalidArgument("token file " + file.path() + " has " + Str(count) +
                           " tokens, too few for one global batch of " + Str(g) + " windows (micro_batch " +
                           Str(o.micro_batch) + " x grad_accum " + Str(o.grad_accum) + " x world_size " +
                           Str(o.world_size) + ") of seq_len " + Str(o.seq_len) + ": it needs at least " + needed +
                           " tokens; use more data or a smaller batch or sequence");
  }
  return BatchSampler(file, o, num_windows);
}

void BatchSampler::SetEpoch(int64_t epoch) {
  state_.epoch = epoch;
  order_ = EpochPermutation(num_windows_, options_.seed, epoch);
}

int64_t BatchSampler::WindowIndex(int micro_step, int64_t row) const {
  ZT_CHECK(micro_step >= 0 && micro_step < options_.grad_accum)
      << "micro_step " << micro_step << " outside [0, " << options_.grad_accum << ")";
  ZT_CHECK(row >= 0 && row < options_.micro_batch);
  const int64_t offset = (micro_step * options_.world_size + options_.rank) * options_.micro_batch + row;
  return order_[static_cast<size_t>(state_.position * global_windows_ + offset)];
}

void BatchSampler::Fill(int micro_step, std::vector<int32_t>& tokens, std::vector<int32_t>& targets) const {
  const int64_t b = options_.micro_batch, t = options_.seq_len;
  tokens.resize(static_cast<size_t>(b * t));
  targets.resize(static_cast<size_t>(b * t));
  for (int64_t row = 0; row < b; ++row) {
    const int64_t start = WindowIndex(micro_step, row) * t;
    file_->Read(start, t, tokens.data() + row * t);
    file_->Read(start + 1, t, targets.data() + row * t);
  }
}

void BatchSampler::Advance() {
  if (++state_.position >= global_batches_per_epoch()) {
    state_.position = 0;
    SetEpoch(state_.epoch + 1);
  }
}

Status BatchSampler::Restore(SamplerState s) {
  if (s.epoch < 0 || s.position < 0 || s.position >= global_batches_per_epoch())
    return OutOfRange("sampler state (epoch " + Str(s.epoch) + ", position " + Str(s.position) +
                      ") is out of range: epoch must be >= 0 and position in [0, " + Str(global_batches_per_epoch()) +
                      "); was it saved for a different data file, batch size or world size?");
  if (s.epoch != state_.epoch) SetEpoch(s.epoch);
  state_.position = s.position;
  return OkStatus();
}

StatusOr<EvalBatches> EvalBatches::Create(const TokenFile& file, int64_t seq_len, int64_t batch, int64_t max_batches) {
  if (seq_len < 1 || batch < 1)
    return InvalidArgument("eval batches: seq_len " + Str(seq_len) + " and batch " + Str(batch) + " must be >= 1");
  const int64_t num_windows = file.size() >= 1 ? (file.size() - 1) / seq_len : 0;
  int64_t n = num_windows / batch;
  if (n == 0)
    return InvalidArgument("eval token file " + file.path() + " has " + Str(file.size()) +
                           " tokens, too few for one batch of " + Str(batch) + " x " + Str(seq_len) +
                           ": it needs at least " + Str(batch * seq_len + 1));
  if (max_batches > 0) n = std::min(n, max_batches);
  return EvalBatches(file, seq_len, batch, n);
}

void EvalBatches::Fill(int64_t i, std::vector<int32_t>& tokens, std::vector<int32_t>& targets) const {
  ZT_CHECK(i >= 0 && i < num_batches_) << "eval batch " << i << " outside [0, " << num_batches_ << ")";
  tokens.resize(static_cast<size_t>(batch_ * seq_len_));
  targets.resize(static_cast<size_t>(batch_ * seq_len_));
  for (int64_t row = 0; row < batch_; ++row) {
    const int64_t start = (i * batch_ + row) * seq_len_;
    file_->Read(start, seq_len_, tokens.data() + row * seq_len_);
    file_->Read(start + 1, seq_len_, targets.data() + row * seq_len_);
  }
}

}  // namespace zt::data
