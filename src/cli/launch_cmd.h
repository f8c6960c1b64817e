// `ztrain launch --nproc N [--hostfile F --node-rank R --master HOST:PORT] -- <subcommand ...>`:
// starts this node's workers (docs/launch.md). When selected, CLI11 runs it while parsing and the
// agent's exit code is stored in *exit_code. The work lives in launch/agent.
#pragma once

namespace CLI {
class App;
}

namespace zt::cli {

void RegisterLaunchCommand(CLI::App& app, int* exit_code);

}  // namespace zt::cli
