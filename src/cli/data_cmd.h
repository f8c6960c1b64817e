// `ztrain data ...`: dataset tools (today `data synth`). Self-contained: main() registers the
// command and, after parsing, runs it when it was selected:
//   auto data = zt::cli::RegisterDataCommand(app);
//   ...CLI11_PARSE...
//   if (data.selected()) return data.Run();
#pragma once

#include <memory>

namespace CLI {
class App;
}

namespace zt::cli {

struct DataCommandState;

class DataCommand {
 public:
  bool selected() const;
  int Run() const;  // process exit code; errors are printed to stderr

 private:
  friend DataCommand RegisterDataCommand(CLI::App& app);
  std::shared_ptr<DataCommandState> state_;  // owns the parsed options (CLI11 binds to them)
};

DataCommand RegisterDataCommand(CLI::App& app);

}  // namespace zt::cli
