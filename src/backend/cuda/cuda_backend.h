// CudaBackend: one GPU. Streams for compute, communication and copies (non-blocking), events
// that order them, a caching allocator (no cudaMalloc inside a step once warm) with live and peak
// bytes per category, pinned host buffers, async copies, and the per-device library handles
// kernels use (cuBLASLt, cuDNN). Every CUDA call is checked with file:line.
// Invariant: memory returned by Allocate stays valid until Free; freed blocks are reused by later
// allocations of the same or smaller rounded size (never returned to the driver inside a step).
// A reused block is safe on any stream: work queued on any of the backend's streams before the
// Free completes before work queued after the reusing Allocate.
// Threads: a thread that launches work for this backend must have its device current
// (cudaSetDevice(device())); Create makes it current on the creating thread.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "core/dtype.h"

typedef struct cublasLtContext* cublasLtHandle_t;
typedef struct cudnnContext* cudnnHandle_t;

namespace zt {

// Counters of the caching allocator (device memory unless named pinned).
struct CudaAllocatorCounters {
  int64_t device_mallocs = 0;   // cudaMalloc calls (cache misses)
  int64_t cache_hits = 0;       // allocations served from the free lists
  int64_t reserved_bytes = 0;   // held from the driver: live + cached blocks
  int64_t cached_bytes = 0;     // in free lists, ready for reuse
  int64_t pinned_mallocs = 0;   // cudaHostAlloc calls
  int64_t pinned_reserved_bytes = 0;
};

class CudaBackend final : public Backend {
 public:
  // device: the CUDA device index (LOCAL_RANK for a launched worker). Errors: no CUDA device, or
  // an index out of range (the message names how many devices there are).
  static StatusOr<std::unique_ptr<CudaBackend>> Create(int device);
  ~CudaBackend() override;

  DeviceKind kind() const override { return DeviceKind::kCUDA; }
  std::string Describe() const override;
  // Out of memory (after releasing cached blocks and retrying once) is Unavailable naming the
  // category, the size and the device's free/total memory.
  StatusOr<Buffer> Allocate(size_t bytes, MemCategory category) override;
  void Free(Buffer& buffer) override;
  MemoryStats& stats() override;
  Stream& stream(StreamKind k) override;
  std::unique_ptr<Event> CreateEvent() override;  // cudaEventDisableTiming
  void CopyHostToDevice(void* dst, const void* src, size_t n, Stream& s) override;
  void CopyDeviceToHost(void* dst, const void* src, size_t n, Stream& s) override;
  void CopyDeviceToDevice(void* dst, const void* src, size_t n, Stream& s) override;
  void Memset(void* dst, int value, size_t n, Stream& s) override;
  void Synchronize() override;  // the whole device
  // Staging memory: pinned (AllocatePinned); plain aligned memory, with one warning, when the
  // pinned kind cannot be had (copies into it are then synchronous).
  void* AllocateHost(size_t bytes) override;
  void FreeHost(void* p) override;

  int device() const;
  const cudaDeviceProp& properties() const;
  // Dense tensor-core peak of the device for a dtype (flop/s), for MFU; 0 if unknown.
  // H100 SXM / H200: bf16 and f16 989e12, f32 (as TF32) 494e12.
  double PeakFlops(DType dtype) const;
  // Pinned (page-locked) host memory, for fast async copies. Freed blocks are cached and reused;
  // the caller orders any copy still reading or writing a block before freeing it.
  StatusOr<void*> AllocatePinned(size_t bytes);
  void FreePinned(void* p);
  // Library handles of this device, created on first use (thread-safe). The handles are shared:
  // a kernel sets the stream it launches on itself (cudnnSetStream(cudnn(), stream) before each
  // cuDNN call; cuBLASLt takes the stream per cublasLtMatmul call).
  cublasLtHandle_t cublaslt();
  cudnnHandle_t cudnn();

  CudaAllocatorCounters allocator_counters() const;
  // Synchronizes the device and returns every cached (free) block to the driver.
  void ReleaseCachedMemory();

  // The size class a request of `bytes` is rounded up to: 512-byte granules up to 1 MiB, 2 MiB
  // granules above.
  static size_t BlockSizeFor(size_t bytes);

 private:
  CudaBackend() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The cudaStream_t behind a CUDA backend's stream (CHECK-fails for other backends' streams).
cudaStream_t CudaStreamOf(Stream& s);
// Whether a CUDA device is present (false without a driver or GPU).
bool CudaDeviceAvailable();
// Number of CUDA devices (0 without a driver or GPU).
int CudaDeviceCount();

}  // namespace zt
