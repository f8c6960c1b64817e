// `ztrain ckpt ls|verify|inspect|export`: tools over a checkpoint directory (docs/checkpoint-format.md).
//   ls DIR [--json]                         every step directory, its state, and what LATEST names
//   verify DIR [--step N | --all]           re-read every shard and check sizes, headers, xxh64
//   inspect DIR [--step N] [--json] [-v]    the manifest, summarized (or as JSON)
//   export DIR --safetensors OUT [--step N] [--model-config PATH] [--dtype f32|bf16|f16]
//                                           consolidated weights in Hugging Face layout
// main() registers it like train: RegisterCkptCommand(app, &exit_code); the subcommand's callback
// sets the exit code (0 only on success; errors go to stderr naming the file and what to do).
// Invariant: these commands only read DIR; nothing is ever created, changed or removed in it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace CLI {
class App;
}

namespace zt::cli {

void RegisterCkptCommand(CLI::App& app, int* exit_code);

// What `ztrain ckpt export` does, without the option parsing.
struct CkptExportOptions {
  std::string dir;            // the checkpoint directory
  int64_t step = -1;          // ckpt::kLatestStep: what LATEST names
  std::string out;            // the export directory (model.safetensors + config.json)
  std::string model_config;   // HF config.json; "" takes the run config's model.config
  std::string dtype = "f32";  // f32, bf16 or f16
  bool verify = true;         // check every shard's checksum before exporting
};
struct CkptExportResult {
  std::string checkpoint;  // the checkpoint directory read
  int64_t step = 0;
  std::string model_config;
  int64_t tensors = 0;
  int64_t elements = 0;
  std::vector<std::string> files;  // written
};
StatusOr<CkptExportResult> ExportCheckpoint(const CkptExportOptions& o);

}  // namespace zt::cli
