// Synthetic datasets written as token files (`ztrain data synth`).
// Invariant: the train and eval files of one call share the Markov transition table (seeded by
// `seed`) and differ only in their walk seeds, so both have the same loss floor ln(branching);
// every file gets a sidecar "<file>.json" describing how it was made. Inputs are validated with
// Status before anything is built, and files are written atomically.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace zt::data {

// Largest transition table (vocab * branching entries) synth builds: 2^27 int32 = 512 MiB.
inline constexpr int64_t kMaxMarkovTableEntries = int64_t{1} << 27;

struct MarkovSynthOptions {
  std::string out;  // train token file
  int64_t vocab = 0;
  int64_t tokens = 0;
  int64_t branching = 2;
  uint64_t seed = 1;        // table seed; walk seeds derive from it
  std::string eval_out;     // optional eval token file ("" = none)
  int64_t eval_tokens = 0;  // required with eval_out
};

struct SynthFile {
  std::string path;
  std::string sidecar;  // path + ".json"
  int64_t tokens = 0;
  uint64_t walk_seed = 0;
};

struct MarkovSynthResult {
  double loss_floor = 0;         // ln(branching)
  int token_size = 0;            // bytes per token in the files
  std::vector<SynthFile> files;  // train first, then eval if requested
};

// Walk seed of split 0 (train) or 1 (eval) for a table seed: distinct, deterministic.
uint64_t MarkovWalkSeed(uint64_t seed, int split);

StatusOr<MarkovSynthResult> WriteMarkovSynth(const MarkovSynthOptions& options);

}  // namespace zt::data
