// ztrain command-line entry point: parses the subcommand and hands off to cli/<command>.cc.
#include <CLI/CLI.hpp>

#include "cli/ckpt_cmd.h"
#include "cli/data_cmd.h"
#include "cli/launch_cmd.h"
#include "cli/train_cmd.h"
#include "core/crash_handler.h"
#include "core/settings.h"

int main(int argc, char** argv) {
  zt::InstallCrashHandler();
  CLI::App app{"ztrain: trains transformer language models on CPUs and GPUs"};
  app.footer(zt::settings::HelpText());
  app.require_subcommand(1);

  auto data_cmd = zt::cli::RegisterDataCommand(app);
  int exit_code = 0;
  zt::cli::RegisterTrainCommand(app, &exit_code);
  zt::cli::RegisterCompileCommand(app, &exit_code);
  zt::cli::RegisterLaunchCommand(app, &exit_code);
  zt::cli::RegisterCkptCommand(app, &exit_code);

  for (const auto& name : zt::settings::UnknownInEnvironment())
    std::fprintf(stderr, "ztrain: warning: %s is not a ztrain setting (see ztrain --help)\n", name.c_str());
  CLI11_PARSE(app, argc, argv);  // runs train / compile / launch when selected (they set exit_code)
  if (data_cmd.selected()) return data_cmd.Run();
  return exit_code;
}
