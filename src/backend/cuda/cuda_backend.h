// CudaBackend: one GPU. Streams for compute, communication and copies (non-blocking), events
// that order them, a caching allocator (no cudaMalloc inside a step once warm) with live and peak
// bytes per category, pinned host buffers, async copies, and the per-device library handles
// kernels use (cuBLASLt, cuDNN). Every CUDA call is checked with file:line.
// Invariant: memory returned by Allocate stays valid until Free; freed blocks are reused by later
// allocations of the same or smaller rounded size (never returned to the driver inside a step).
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "backend/backend.h"
#include "core/dtype.h"

typedef struct cublasLtContext* cublasLtHandle_t;
typedef struct cudnnContext* cudnnHandle_t;

namespace zt {

class CudaBackend final : public Backend {
 public:
  // device: the CUDA device index (LOCAL_RANK for a launched worker). Errors: no such device.
  static StatusOr<std::unique_ptr<CudaBackend>> Create(int device);
  ~CudaBackend() override;

  DeviceKind kind() const override { return DeviceKind::kCUDA; }
  std::string Describe() const override;
  StatusOr<Buffer> Allocate(size_t bytes, MemCategory category) override;
  void Free(Buffer& buffer) override;
  MemoryStats& stats() override;
  Stream& stream(StreamKind k) override;
  std::unique_ptr<Event> CreateEvent() override;
  void CopyHostToDevice(void* dst, const void* src, size_t n, Stream& s) override;
  void CopyDeviceToHost(void* dst, const void* src, size_t n, Stream& s) override;
  void CopyDeviceToDevice(void* dst, const void* src, size_t n, Stream& s) override;
  void Memset(void* dst, int value, size_t n, Stream& s) override;
  void Synchronize() override;

  int device() const;
  const cudaDeviceProp& properties() const;
  // Dense tensor-core peak of the device for a dtype (flop/s), for MFU; 0 if unknown.
  double PeakFlops(DType dtype) const;
  // Pinned (page-locked) host memory, for fast async copies.
  StatusOr<void*> AllocatePinned(size_t bytes);
  void FreePinned(void* p);
  // Library handles of this device, created on first use.
  cublasLtHandle_t cublaslt();
  cudnnHandle_t cudnn();

 private:
  CudaBackend() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The cudaStream_t behind a CUDA backend's stream (CHECK-fails for other backends' streams).
cudaStream_t CudaStreamOf(Stream& s);
// Whether a CUDA device is present (false without a driver or GPU).
bool CudaDeviceAvailable();

}  // namespace zt
