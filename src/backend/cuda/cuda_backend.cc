// PLACEHOLDER (being written): CudaBackend.
#include "backend/cuda/cuda_backend.h"

namespace zt {

struct CudaBackend::Impl {};

StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(int) { return Unimplemented("CudaBackend is being written"); }
CudaBackend::~CudaBackend() = default;
std::string CudaBackend::Describe() const { return "cuda"; }
StatusOr<Buffer> CudaBackend::Allocate(size_t, MemCategory) { return Unimplemented("cuda"); }
void CudaBackend::Free(Buffer&) {}
MemoryStats& CudaBackend::stats() {
  static MemoryStats s;
  return s;
}
Stream& CudaBackend::stream(StreamKind) { ZT_CHECK(false); }
std::unique_ptr<Event> CudaBackend::CreateEvent() { return nullptr; }
void CudaBackend::CopyHostToDevice(void*, const void*, size_t, Stream&) {}
void CudaBackend::CopyDeviceToHost(void*, const void*, size_t, Stream&) {}
void CudaBackend::CopyDeviceToDevice(void*, const void*, size_t, Stream&) {}
void CudaBackend::Memset(void*, int, size_t, Stream&) {}
void CudaBackend::Synchronize() {}
bool CudaDeviceAvailable() { return false; }
cudaStream_t CudaStreamOf(Stream&) { return nullptr; }

}  // namespace zt
