// CpuBackend implementation.
#include "backend/cpu/cpu_backend.h"

#include <omp.h>

#include <cstdlib>
#include <cstring>

#include "core/settings.h"

extern "C" void openblas_set_num_threads(int num_threads);

namespace zt {
namespace {

class CpuStream final : public Stream {
 public:
  void Synchronize() override {}
};

class CpuEvent final : public Event {
 public:
  void Record(Stream&) override {}
  void StreamWait(Stream&) override {}
  void Synchronize() override {}
};

}  // namespace

const char* DeviceKindName(DeviceKind k) { return k == DeviceKind::kCPU ? "cpu" : "cuda"; }

int InitCpuThreads() {
  static const int n = [] {
    int want = settings::NumThreads();
    if (want > 0) omp_set_num_threads(want);
    int got = omp_get_max_threads();
    openblas_set_num_threads(got);
    return got;
  }();
  return n;
}

CpuBackend::CpuBackend() {
  InitCpuThreads();
  for (auto& s : streams_) s = std::make_unique<CpuStream>();
}

std::string CpuBackend::Describe() const {
  return "cpu (" + std::to_string(InitCpuThreads()) + " threads)";
}

StatusOr<Buffer> CpuBackend::Allocate(size_t bytes, MemCategory category) {
  size_t n = AlignedBytes(bytes == 0 ? 1 : bytes);
  void* p = std::aligned_alloc(kMemAlignment, n);
  if (p == nullptr) {
    return Status(StatusCode::kUnavailable,
                  "out of host memory allocating " + std::to_string(n) + " bytes of " +
                      MemCategoryName(category) + "; reduce the batch size or the model");
  }
  stats_.OnAlloc(category, n);
  return Buffer{p, n, category};
}

void CpuBackend::Free(Buffer& b) {
  if (b.data == nullptr) return;
  std::free(b.data);
  stats_.OnFree(b.category, b.bytes);
  b = Buffer{};
}

Stream& CpuBackend::stream(StreamKind k) { return *streams_[static_cast<int>(k)]; }
std::unique_ptr<Event> CpuBackend::CreateEvent() { return std::make_unique<CpuEvent>(); }

void CpuBackend::CopyHostToDevice(void* dst, const void* src, size_t n, Stream&) {
  if (n) std::memcpy(dst, src, n);
}
void CpuBackend::CopyDeviceToHost(void* dst, const void* src, size_t n, Stream&) {
  if (n) std::memcpy(dst, src, n);
}
void CpuBackend::CopyDeviceToDevice(void* dst, const void* src, size_t n, Stream&) {
  if (n) std::memmove(dst, src, n);
}
void CpuBackend::Memset(void* dst, int value, size_t n, Stream&) {
  if (n) std::memset(dst, value, n);
}

}  // namespace zt
