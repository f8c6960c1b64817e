// Out-of-range indices met by a CUDA kernel (token ids, class targets). A kernel cannot stop the
// process the way the CPU kernels' CHECKs do, so it skips the bad index and records it here: a
// per-kernel-family slot in device memory keeps the lowest (where << 32 | value) key and a count;
// the host reads and clears it with TakeIndexErrors.
// Invariant: the slot is only written by atomics, so the first bad index (by position) is the same
// whatever the thread order; reading clears it.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

namespace zt {

struct IndexErrorSlot {
  unsigned long long first;  // min of (where << 32 | uint32(value)); kNoIndexError if none
  unsigned long long count;
};
inline constexpr unsigned long long kNoIndexError = ~0ull;

// What the host reads from a slot.
struct IndexErrors {
  int64_t count = 0;   // bad indices recorded
  int64_t where = -1;  // the lowest position of a bad index (saturated at 2^32 - 1); -1 if none
  int64_t value = 0;   // the index there (saturated to the int32 range)
};

// Records a bad `value` at `where` (device side).
__device__ __forceinline__ void RecordIndexError(IndexErrorSlot* slot, int64_t where, int64_t value) {
  const unsigned long long w = where < 0xffffffffll ? static_cast<unsigned long long>(where) : 0xffffffffull;
  const int64_t v = value < INT_MIN ? INT_MIN : (value > INT_MAX ? INT_MAX : value);
  atomicMin(&slot->first, (w << 32) | static_cast<uint32_t>(static_cast<int32_t>(v)));
  atomicAdd(&slot->count, 1ull);
}

// Reads and clears the slot whose __device__ variable is `slot_symbol` (pass &the_variable), for
// the current device. Synchronizes `stream`.
IndexErrors TakeIndexErrors(const void* slot_symbol, cudaStream_t stream);

}  // namespace zt
