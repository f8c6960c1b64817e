// TrainJob: one rank's whole training run from a RunConfig: the model (HF config; initial weights
// from safetensors or the deterministic init), the Engine, the data sampler, evaluation on the
// held-out file, metrics (progress lines, <output_dir>/metrics.jsonl, progress bar), and the
// final weights exported to <output_dir>/final in Hugging Face's layout; checkpoints and resume
// (config "checkpoint", job/checkpointing.h).
// Invariant: the same config, seed and world size give bit-identical losses (the sampler, the init
// and every kernel are deterministic).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "config/run_config.h"
#include "core/status.h"

namespace zt::comm {
class Communicator;
class Store;
}

namespace zt::job {

struct TrainOptions {
  bool progress_bar = false;  // usually isatty(stderr)
  bool export_final = true;   // write <output_dir>/final
  // The job's communicator (data parallelism over its ranks); null for a single process.
  comm::Communicator* comm = nullptr;
  // The job's store (this attempt's keys); checkpoints meet through it. Null: a private one.
  comm::Store* store = nullptr;
};

struct TrainResult {
  int64_t first_step = 1;           // 1, or the step after the checkpoint the run resumed from
  std::vector<double> losses;       // per step run (from first_step)
  std::vector<double> eval_losses;  // per evaluation (including the final one when eval is set)
  double loss_floor = -1;           // from the data's sidecar, if it has one
};

StatusOr<TrainResult> RunTraining(const config::RunConfig& c, Backend& backend, const TrainOptions& o);

}  // namespace zt::job
