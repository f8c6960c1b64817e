// Host side of kernels/cuda/index_errors.cuh: read a slot, then reset it.
#include "kernels/cuda/index_errors.cuh"

#include "backend/cuda/cuda_check.h"

namespace zt {

IndexErrors TakeIndexErrors(const void* slot_symbol, cudaStream_t stream) {
  IndexErrorSlot slot{};
  ZT_CUDA_CHECK(cudaMemcpyFromSymbolAsync(&slot, slot_symbol, sizeof(slot), 0, cudaMemcpyDeviceToHost, stream));
  ZT_CUDA_CHECK(cudaStreamSynchronize(stream));
  const IndexErrorSlot reset{kNoIndexError, 0};
  ZT_CUDA_CHECK(cudaMemcpyToSymbolAsync(slot_symbol, &reset, sizeof(reset), 0, cudaMemcpyHostToDevice, stream));
  ZT_CUDA_CHECK(cudaStreamSynchronize(stream));
  IndexErrors e;
  e.count = static_cast<int64_t>(slot.count);
  if (slot.count > 0) {
    e.where = static_cast<int64_t>(slot.first >> 32);
    e.value = static_cast<int32_t>(static_cast<uint32_t>(slot.first & 0xffffffffull));
  }
  return e;
}

}  // namespace zt
