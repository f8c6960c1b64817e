// Out-of-range targets seen by the CUDA cross-entropy kernels. On the CPU a target outside
// [0, classes) (classes: the op's attribute, V when 0) that is not ignore_index CHECK-fails; a GPU
// kernel cannot stop the process, so the kernels never read through such a target, make that
// row's loss term NaN (so the loss is NaN) and its whole gradient row NaN (padding columns
// included), and record the row in a device-side flag that this function reads.
// NOTE: the executor does not call this yet; until it does, a bad target shows only as a NaN loss.
// Host-only declarations: safe to include from .cc files.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace zt {

struct CrossEntropyTargetErrors {
  int64_t count = 0;  // bad targets recorded (a row seen by both directions counts twice)
  int64_t row = -1;   // the lowest row with a bad target (saturated at 2^32 - 1); -1 if none
  int64_t target = 0; // the target there (saturated to the int32 range)
};

// Reads and clears the record for the current device. Synchronizes `stream`; call it when no
// cross-entropy kernel is running on another stream.
CrossEntropyTargetErrors TakeCrossEntropyTargetErrors(cudaStream_t stream);

}  // namespace zt
