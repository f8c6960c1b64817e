// ztrain command-line entry point: parses the subcommand and hands off to cli/<command>.cc.
#include <CLI/CLI.hpp>

#include "cli/data_cmd.h"
#include "cli/demo.h"
#include "core/settings.h"

int main(int argc, char** argv) {
  CLI::App app{"ztrain: trains transformer language models on CPUs and GPUs"};
  app.footer(zt::settings::HelpText());
  app.require_subcommand(1);

  zt::cli::DemoOptions demo;
  auto* demo_cmd = app.add_subcommand("demo", "train a tiny GPT-2 on synthetic tokens on the CPU");
  demo_cmd->add_option("--steps", demo.steps, "optimizer steps")->check(CLI::PositiveNumber);
  demo_cmd->add_option("--print-every", demo.print_every, "print the loss every N steps")->check(CLI::PositiveNumber);
  demo_cmd->add_option("--seed", demo.seed, "seed of data and initialization");
  demo_cmd->add_option("--lr", demo.lr, "peak learning rate")->check(CLI::PositiveNumber);

  auto data_cmd = zt::cli::RegisterDataCommand(app);

  CLI11_PARSE(app, argc, argv);
  for (const auto& name : zt::settings::UnknownInEnvironment())
    std::fprintf(stderr, "ztrain: warning: %s is not a ztrain setting (see ztrain --help)\n", name.c_str());
  if (*demo_cmd) return zt::cli::RunDemo(demo);
  if (data_cmd.selected()) return data_cmd.Run();
  return 0;
}
