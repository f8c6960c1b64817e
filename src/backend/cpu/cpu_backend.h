// CpuBackend: host memory (256-byte aligned, accounted per category) and in-order "streams" that
// execute immediately on the calling thread, so events are trivially satisfied. Kernels run on
// OpenMP threads (count from ZT_NUM_THREADS) and OpenBLAS.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace zt {

class CpuBackend final : public Backend {
 public:
  CpuBackend();
  DeviceKind kind() const override { return DeviceKind::kCPU; }
  std::string Describe() const override;
  StatusOr<Buffer> Allocate(size_t bytes, MemCategory category) override;
  void Free(Buffer& buffer) override;
  MemoryStats& stats() override { return stats_; }
  Stream& stream(StreamKind k) override;
  std::unique_ptr<Event> CreateEvent() override;
  void CopyHostToDevice(void* dst, const void* src, size_t n, Stream& s) override;
  void CopyDeviceToHost(void* dst, const void* src, size_t n, Stream& s) override;
  void CopyDeviceToDevice(void* dst, const void* src, size_t n, Stream& s) override;
  void Memset(void* dst, int value, size_t n, Stream& s) override;
  void Synchronize() override {}

 private:
  MemoryStats stats_;
  std::unique_ptr<Stream> streams_[kNumStreamKinds];
};

// Applies ZT_NUM_THREADS to OpenMP and OpenBLAS (idempotent); returns the thread count in use.
int InitCpuThreads();

}  // namespace zt
