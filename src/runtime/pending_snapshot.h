// PendingSnapshot: a checkpoint snapshot whose device-to-host copies are queued on the backend's
// copy stream but may not have finished (Engine::StartSnapshot). On a GPU the copies run while the
// next step's forward and backward do; that step's optimizer phase waits for them on the device.
// Wait() blocks the calling thread (any thread) until the bytes are in the snapshot and converts
// the few sections whose graph value is not f32.
// Invariant: until Wait() returns OK, nobody reads the snapshot's section bytes and nobody moves
// them (no AddSection beyond the reserved capacity).
#pragma once

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "core/dtype.h"
#include "core/status.h"

namespace zt {

class PendingSnapshot {
 public:
  // A section whose value is stored in another dtype: raw bytes copied now, converted at Wait.
  struct Conversion {
    std::vector<char> raw;
    DType dtype;
    int64_t count = 0;
    float* out = nullptr;  // in the snapshot
  };

  PendingSnapshot(std::unique_ptr<Event> done, std::vector<Conversion> conversions)
      : done_(std::move(done)), conversions_(std::move(conversions)) {}

  Status Wait();  // idempotent

 private:
  std::unique_ptr<Event> done_;
  std::vector<Conversion> conversions_;
  bool waited_ = false;
};

}  // namespace zt
