// The training job's checkpoints (config section "checkpoint"; docs/checkpoint-format.md and
// docs/checkpoint-tiers.md). At start every rank agrees, through the job's store, on what to
// resume from (ckpt::ChooseRestore: the newest complete checkpoint among this node's host-memory
// tier and the disk tier, each verified) and restores the engine, the loss scaler and the sampler
// from it, resharding when the disk checkpoint was written by another world size. After every
// `interval` steps (and the last step) each rank snapshots its state, publishes it to its
// host-memory segment (a memcpy) and hands it to the background disk writer (ckpt::
// CheckpointWriter: up to max_in_flight checkpoints in flight, committed by rank 0).
// Invariants: a resumed run continues bit-identically (same losses and parameter bytes) to one
// that never stopped, for any tier; host memory holds at most max_in_flight + 1 snapshots of this
// rank beside the shared-memory segment; nothing is resumed that did not verify.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "config/run_config.h"
#include "core/status.h"
#include "data/sampler.h"
#include "runtime/engine.h"

namespace zt::comm {
class Store;
}

namespace zt::job {

struct ResumePoint {
  int64_t step = 0;     // steps already taken (0: a fresh start)
  std::string source;   // "nothing", "host memory step 12 (slot 1)", "disk step 10 (<path>)"
};

class Checkpointer {
 public:
  // `store`: the job's store scoped to this attempt (may be null for a single process).
  static StatusOr<std::unique_ptr<Checkpointer>> Create(const config::RunConfig& c, Engine& engine,
                                                        data::BatchSampler& sampler, comm::Store* store, int rank,
                                                        int world_size);
  ~Checkpointer();

  // Chooses what to resume from and restores it (every rank calls it once, before training).
  StatusOr<ResumePoint> Resume();
  // After global step `step`: checkpoints when it is due (every interval, and when `last`).
  Status AfterStep(int64_t step, bool last);
  // Waits for every checkpoint in flight; returns the first failure.
  Status Finish();

 private:
  struct Impl;
  explicit Checkpointer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace zt::job
