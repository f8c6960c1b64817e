// `ztrain train --config run.json` and `ztrain compile --config run.json [--dump-ir PASS]...`.
// Each Register* adds the subcommand; when it is selected, CLI11 runs it while parsing and the
// process exit code is stored in *exit_code. The work lives in job/.
#pragma once

namespace CLI {
class App;
}

namespace zt::cli {

void RegisterTrainCommand(CLI::App& app, int* exit_code);
void RegisterCompileCommand(CLI::App& app, int* exit_code);

}  // namespace zt::cli
