// `ztrain data synth`: parses options into data::MarkovSynthOptions and reports what was written;
// the work itself lives in data/synth.cc.
#include "cli/data_cmd.h"

#include <CLI/CLI.hpp>
#include <cstdio>

#include "data/synth.h"

namespace zt::cli {

struct DataCommandState {
  CLI::App* data = nullptr;
  CLI::App* synth = nullptr;
  data::MarkovSynthOptions synth_options;
};

DataCommand RegisterDataCommand(CLI::App& app) {
  DataCommand cmd;
  cmd.state_ = std::make_shared<DataCommandState>();
  DataCommandState& s = *cmd.state_;
  s.data = app.add_subcommand("data", "dataset tools: write synthetic token files");
  s.data->require_subcommand(1);
  s.synth = s.data->add_subcommand(
      "synth", "write a Markov-chain token file (and eval file) with a known loss floor ln(branching)");
  data::MarkovSynthOptions& o = s.synth_options;
  s.synth->add_option("--out", o.out, "train token file to write (a sidecar <out>.json is written beside it)")
      ->required();
  s.synth->add_option("--vocab", o.vocab, "vocabulary size (u16 tokens when <= 65536, else u32)")
      ->required()
      ->check(CLI::PositiveNumber);
  s.synth->add_option("--tokens", o.tokens, "tokens in the train file")->required()->check(CLI::PositiveNumber);
  s.synth->add_option("--branching", o.branching, "successors per token; the loss floor is ln(branching)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  s.synth->add_option("--seed", o.seed, "seed of the transition table (walk seeds derive from it)")
      ->capture_default_str();
  auto* eval_out = s.synth->add_option("--eval-out", o.eval_out, "eval token file: same table, a different walk");
  auto* eval_tokens =
      s.synth->add_option("--eval-tokens", o.eval_tokens, "tokens in the eval file")->check(CLI::PositiveNumber);
  eval_out->needs(eval_tokens);
  eval_tokens->needs(eval_out);
  return cmd;
}

bool DataCommand::selected() const { return state_ && state_->data->parsed(); }

int DataCommand::Run() const {
  const DataCommandState& s = *state_;
  if (s.synth->parsed()) {
    auto r = data::WriteMarkovSynth(s.synth_options);
    if (!r.ok()) {
      std::fprintf(stderr, "ztrain: error: %s\n", r.status().ToString().c_str());
      return 1;
    }
    for (const auto& f : r->files)
      std::printf("wrote %s (%lld tokens, u%d, walk seed %llu) and %s\n", f.path.c_str(),
                  static_cast<long long>(f.tokens), r->token_size * 8, static_cast<unsigned long long>(f.walk_seed),
                  f.sidecar.c_str());
    std::printf("loss floor ln(%lld) = %.6f nats\n", static_cast<long long>(s.synth_options.branching), r->loss_floor);
    return 0;
  }
  std::fprintf(stderr, "ztrain: error: `ztrain data` needs a subcommand (see ztrain data --help)\n");
  return 1;
}

}  // namespace zt::cli
