// Out-of-range ids seen by the CUDA embedding kernels. On the CPU an id outside [0, V) CHECK-fails;
// a GPU kernel cannot stop the process, so the embedding kernels never read or write through such
// an id, write NaN into that position's output row (forward) or leave the position out of every
// gradient row (backward), and record it in a device-side flag that this function reads.
// NOTE: the executor does not call this yet; until it does, a bad id shows only as NaN outputs.
// Host-only declarations: safe to include from .cc files.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace zt {

struct EmbeddingIdErrors {
  int64_t count = 0;      // bad ids recorded (a position seen by both directions counts twice)
  int64_t position = -1;  // the lowest flat position of a bad id (saturated at 2^32 - 1); -1 if none
  int64_t id = 0;         // the id there (saturated to the int32 range)
};

// Reads and clears the record for the current device. Synchronizes `stream`; call it when no
// embedding kernel is running on another stream.
EmbeddingIdErrors TakeEmbeddingIdErrors(cudaStream_t stream);

}  // namespace zt
