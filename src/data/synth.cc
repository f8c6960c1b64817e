// Markov synthetic dataset writer: validate, build the table once, walk it per split, write each
// token file and its sidecar atomically.
#include "data/synth.h"

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "data/markov.h"
#include "data/token_file.h"

namespace zt::data {
namespace {

std::string Str(int64_t v) { return std::to_string(v); }

Status Validate(const MarkovSynthOptions& o) {
  if (o.out.empty()) return InvalidArgument("data synth: --out is required (the train token file to write)");
  if (o.vocab < 1 || o.vocab > kMaxVocab)
    return InvalidArgument("data synth: --vocab " + Str(o.vocab) + " is out of range [1, 2^31]");
  if (o.branching < 1 || o.branching > o.vocab)
    return InvalidArgument("data synth: --branching " + Str(o.branching) + " must be in [1, vocab " + Str(o.vocab) +
                           "]");
  if (o.vocab > kMaxMarkovTableEntries / o.branching)
    return InvalidArgument("data synth: the transition table (vocab " + Str(o.vocab) + " x branching " +
                           Str(o.branching) + ") has more than 2^27 entries; use a smaller vocab or branching");
  if (o.tokens < 1) return InvalidArgument("data synth: --tokens " + Str(o.tokens) + " must be >= 1");
  if (o.eval_out.empty() != (o.eval_tokens == 0))
    return InvalidArgument("data synth: --eval-out and --eval-tokens go together; give both or neither");
  if (!o.eval_out.empty() && o.eval_tokens < 1)
    return InvalidArgument("data synth: --eval-tokens " + Str(o.eval_tokens) + " must be >= 1");
  if (!o.eval_out.empty() && o.eval_out == o.out)
    return InvalidArgument("data synth: --eval-out and --out are the same file " + o.out);
  return OkStatus();
}

}  // namespace

uint64_t MarkovWalkSeed(uint64_t seed, int split) {
  // splitmix64 finalizer of (seed, split): walks never reuse the table's mt19937_64 stream.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(split + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

StatusOr<MarkovSynthResult> WriteMarkovSynth(const MarkovSynthOptions& o) {
  ZT_RETURN_IF_ERROR(Validate(o));
  MarkovCorpus corpus(o.vocab, o.branching, o.seed);
  MarkovSynthResult result;
  result.loss_floor = corpus.LossFloor();
  result.token_size = TokenSizeForVocab(o.vocab);

  struct Split {
    const char* name;
    const std::string* path;
    int64_t tokens;
  };
  std::vector<Split> splits = {{"train", &o.out, o.tokens}};
  if (!o.eval_out.empty()) splits.push_back({"eval", &o.eval_out, o.eval_tokens});
  for (size_t s = 0; s < splits.size(); ++s) {
    const Split& sp = splits[s];
    SynthFile f{*sp.path, *sp.path + ".json", sp.tokens, MarkovWalkSeed(o.seed, static_cast<int>(s))};
    std::vector<int32_t> chain = corpus.Generate(sp.tokens, f.walk_seed);
    ZT_RETURN_IF_ERROR(WriteTokenFile(f.path, chain, result.token_size, o.vocab));
    nlohmann::ordered_json j = {
        {"kind", "markov"},         {"vocab", o.vocab},
        {"branching", o.branching}, {"seed", o.seed},
        {"tokens", sp.tokens},      {"loss_floor", result.loss_floor},
        {"split", sp.name},         {"table_seed", o.seed},
        {"walk_seed", f.walk_seed}, {"token_size", result.token_size},
    };
    ZT_RETURN_IF_ERROR(WriteFileAtomically(f.sidecar, j.dump(2) + "\n"));
    result.files.push_back(std::move(f));
  }
  return result;
}

}  // namespace zt::data
