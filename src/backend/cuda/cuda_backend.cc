// CudaBackend implementation: streams, events, the caching device allocator, pinned host memory,
// async copies and lazily created library handles.
// Allocator invariants: every block is in exactly one of `live` (handed out) or a free list;
// reserved_bytes = sum of both; a block taken from a free list makes every backend stream wait
// for the events recorded on every stream when it was freed, so no work queued before the Free
// can overlap work queued after the reuse. Stats count AlignedBytes(requested) per category,
// exactly as the CPU backend and the memory planner do (block rounding is not counted).
#include "backend/cuda/cuda_backend.h"

#include <cublasLt.h>
#include <cudnn.h>

#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "core/logging.h"

namespace zt {
namespace {

constexpr size_t kSmallLimit = size_t{1} << 20;  // requests up to 1 MiB use small granules
constexpr size_t kSmallGranule = 512;
constexpr size_t kLargeGranule = size_t{2} << 20;

size_t RoundUp(size_t n, size_t g) { return (n + g - 1) / g * g; }

// Destruction-time calls may find the runtime already unloading (backends destroyed at exit).
void CheckTeardown(cudaError_t e, const char* what) {
  if (e == cudaSuccess || e == cudaErrorCudartUnloading || e == cudaErrorContextIsDestroyed) return;
  ZT_LOG(ERROR) << what << ": " << cudaGetErrorName(e) << " (" << cudaGetErrorString(e) << ")";
}

std::string Bytes(size_t n) {
  char buf[64];
  double g = static_cast<double>(n) / (1024.0 * 1024.0 * 1024.0);
  if (g >= 1.0) {
    std::snprintf(buf, sizeof(buf), "%zu bytes (%.2f GiB)", n, g);
  } else {
    std::snprintf(buf, sizeof(buf), "%zu bytes (%.2f MiB)", n, static_cast<double>(n) / (1024.0 * 1024.0));
  }
  return buf;
}

class CudaStream final : public Stream {
 public:
  explicit CudaStream(cudaStream_t s) : s_(s) {}
  void Synchronize() override { ZT_CUDA_CHECK(cudaStreamSynchronize(s_)); }
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_;
};

class CudaEvent final : public Event {
 public:
  CudaEvent() {
    ZT_CUDA_CHECK(cudaGetDevice(&device_));
    ZT_CUDA_CHECK(cudaEventCreateWithFlags(&e_, cudaEventDisableTiming));
  }
  // Synchronize and the destructor may run on another thread (a checkpoint's finisher), whose
  // current device can differ: they make the event's device current first.
  ~CudaEvent() override {
    UseDevice();
    CheckTeardown(cudaEventDestroy(e_), "cudaEventDestroy");
  }
  void Record(Stream& s) override { ZT_CUDA_CHECK(cudaEventRecord(e_, CudaStreamOf(s))); }
  void StreamWait(Stream& s) override { ZT_CUDA_CHECK(cudaStreamWaitEvent(CudaStreamOf(s), e_, 0)); }
  void StreamWaitExternal(Stream& s) override {
    // cudaEventWaitExternal is only valid while capturing.
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    ZT_CUDA_CHECK(cudaStreamIsCapturing(CudaStreamOf(s), &capturing));
    unsigned flags = capturing == cudaStreamCaptureStatusActive ? cudaEventWaitExternal : cudaEventWaitDefault;
    ZT_CUDA_CHECK(cudaStreamWaitEvent(CudaStreamOf(s), e_, flags));
  }
  void Synchronize() override {
    UseDevice();
    ZT_CUDA_CHECK(cudaEventSynchronize(e_));
  }

 private:
  void UseDevice() const {
    int current = -1;
    if (cudaGetDevice(&current) == cudaSuccess && current != device_) (void)cudaSetDevice(device_);
  }

  int device_ = 0;
  cudaEvent_t e_ = nullptr;
};

// A cached block and the events (one per stream) recorded when it was freed.
struct FreeBlock {
  void* ptr = nullptr;
  std::array<cudaEvent_t, kNumStreamKinds> freed{};
};

struct LiveBlock {
  size_t block_bytes = 0;  // size class actually reserved
  size_t accounted = 0;    // AlignedBytes of the request (what stats count)
  MemCategory category = MemCategory::kWorkspace;
};

}  // namespace

struct CudaBackend::Impl {
  int device = 0;
  cudaDeviceProp props{};
  std::unique_ptr<CudaStream> streams[kNumStreamKinds];
  MemoryStats stats;

  mutable std::mutex mu;  // guards everything below
  std::map<size_t, std::vector<FreeBlock>> free_lists;  // block size -> cached blocks
  std::unordered_map<void*, LiveBlock> live;
  std::vector<cudaEvent_t> event_pool;
  CudaAllocatorCounters counters;
  std::map<size_t, std::vector<void*>> pinned_free;
  std::unordered_map<void*, size_t> pinned_live;
  std::unordered_set<void*> unpinned_host;  // AllocateHost's fallbacks
  std::unordered_map<void*, void*> aligned_host;  // AllocateHost: page-aligned pointer -> pinned block
  bool warned_unpinned = false;

  std::mutex handles_mu;
  cublasLtHandle_t cublaslt = nullptr;
  cudnnHandle_t cudnn = nullptr;

  cudaEvent_t TakeEvent() {
    if (!event_pool.empty()) {
      cudaEvent_t e = event_pool.back();
      event_pool.pop_back();
      return e;
    }
    cudaEvent_t e = nullptr;
    ZT_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return e;
  }

  // Frees every cached block back to the driver (caller holds mu and has synchronized).
  void ReleaseCachedLocked() {
    for (auto& [size, blocks] : free_lists) {
      for (FreeBlock& b : blocks) {
        CheckTeardown(cudaFree(b.ptr), "cudaFree");
        for (cudaEvent_t e : b.freed) event_pool.push_back(e);
        counters.reserved_bytes -= static_cast<int64_t>(size);
        counters.cached_bytes -= static_cast<int64_t>(size);
      }
    }
    free_lists.clear();
  }
};

size_t CudaBackend::BlockSizeFor(size_t bytes) {
  size_t n = std::max<size_t>(bytes, 1);
  return n <= kSmallLimit ? RoundUp(n, kSmallGranule) : RoundUp(n, kLargeGranule);
}

int CudaDeviceCount() {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();  // no driver / no device: not an error for the caller
    return 0;
  }
  return n;
}

bool CudaDeviceAvailable() { return CudaDeviceCount() > 0; }

cudaStream_t CudaStreamOf(Stream& s) {
  auto* cs = dynamic_cast<CudaStream*>(&s);
  ZT_CHECK(cs != nullptr) << "CudaStreamOf: the stream does not belong to a CUDA backend";
  return cs->get();
}

StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(int device) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    (void)cudaGetLastError();
    return Status(StatusCode::kUnavailable,
                  std::string("no CUDA device is available (") + (e == cudaSuccess ? "0 devices" : cudaGetErrorString(e)) +
                      "); run on a GPU machine or set ZT_DEVICE=cpu");
  }
  if (device < 0 || device >= count) {
    return InvalidArgument("CUDA device " + std::to_string(device) + " does not exist: this process sees " +
                           std::to_string(count) + " device(s) (indices 0.." + std::to_string(count - 1) +
                           "); check LOCAL_RANK, --nproc and CUDA_VISIBLE_DEVICES");
  }
  ZT_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")"));
  auto be = std::unique_ptr<CudaBackend>(new CudaBackend());
  be->impl_ = std::make_unique<Impl>();
  Impl& im = *be->impl_;
  im.device = device;
  ZT_RETURN_IF_ERROR(CudaStatus(cudaGetDeviceProperties(&im.props, device), "cudaGetDeviceProperties"));
  int least = 0, greatest = 0;
  ZT_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  for (int k = 0; k < kNumStreamKinds; ++k) {
    cudaStream_t s = nullptr;
    // Communication gets the highest priority so collectives are not starved by compute.
    int prio = k == static_cast<int>(StreamKind::kComm) ? greatest : least;
    ZT_CUDA_CHECK(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, prio));
    im.streams[k] = std::make_unique<CudaStream>(s);
  }
  return be;
}

CudaBackend::~CudaBackend() {
  if (!impl_) return;
  Impl& im = *impl_;
  CheckTeardown(cudaSetDevice(im.device), "cudaSetDevice");
  CheckTeardown(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  if (im.cublaslt) cublasLtDestroy(im.cublaslt);
  if (im.cudnn) cudnnDestroy(im.cudnn);
  std::lock_guard<std::mutex> l(im.mu);
  im.ReleaseCachedLocked();
  for (auto& [p, b] : im.live) CheckTeardown(cudaFree(p), "cudaFree");
  im.live.clear();
  for (auto& [size, ptrs] : im.pinned_free)
    for (void* p : ptrs) CheckTeardown(cudaFreeHost(p), "cudaFreeHost");
  for (auto& [p, size] : im.pinned_live) CheckTeardown(cudaFreeHost(p), "cudaFreeHost");
  for (cudaEvent_t e : im.event_pool) CheckTeardown(cudaEventDestroy(e), "cudaEventDestroy");
  for (auto& s : im.streams) CheckTeardown(cudaStreamDestroy(s->get()), "cudaStreamDestroy");
}

std::string CudaBackend::Describe() const {
  const cudaDeviceProp& p = impl_->props;
  char buf[128];
  std::snprintf(buf, sizeof(buf), ", %.1f GiB, sm_%d%d, %d SMs)",
                static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0), p.major, p.minor,
                p.multiProcessorCount);
  return "cuda:" + std::to_string(impl_->device) + " (" + std::string(p.name) + buf;
}

int CudaBackend::device() const { return impl_->device; }
const cudaDeviceProp& CudaBackend::properties() const { return impl_->props; }
MemoryStats& CudaBackend::stats() { return impl_->stats; }

double CudaBackend::PeakFlops(DType dtype) const {
  std::string name = impl_->props.name;
  bool low_precision = dtype == DType::kBF16 || dtype == DType::kF16;
  if (!low_precision && dtype != DType::kF32) return 0;
  if (name.find("H100") != std::string::npos) {
    if (name.find("PCIe") != std::string::npos) return low_precision ? 756e12 : 378e12;
    if (name.find("NVL") != std::string::npos) return 0;  // not tabulated here
    return low_precision ? 989e12 : 494e12;  // SXM (HBM3)
  }
  if (name.find("H200") != std::string::npos) return low_precision ? 989e12 : 494e12;
  return 0;
}

StatusOr<Buffer> CudaBackend::Allocate(size_t bytes, MemCategory category) {
  Impl& im = *impl_;
  const size_t accounted = AlignedBytes(bytes == 0 ? 1 : bytes);
  const size_t block = BlockSizeFor(accounted);
  std::lock_guard<std::mutex> l(im.mu);
  // A cached block of the same class or a larger one up to twice the size (more would waste it).
  auto it = im.free_lists.lower_bound(block);
  if (it != im.free_lists.end() && it->first <= 2 * block) {
    FreeBlock fb = it->second.back();
    size_t size = it->first;
    it->second.pop_back();
    if (it->second.empty()) im.free_lists.erase(it);
    for (auto& s : im.streams)
      for (cudaEvent_t e : fb.freed) ZT_CUDA_CHECK(cudaStreamWaitEvent(s->get(), e, 0));
    for (cudaEvent_t e : fb.freed) im.event_pool.push_back(e);
    im.counters.cached_bytes -= static_cast<int64_t>(size);
    ++im.counters.cache_hits;
    im.live[fb.ptr] = LiveBlock{size, accounted, category};
    im.stats.OnAlloc(category, accounted);
    return Buffer{fb.ptr, accounted, category};
  }
  ZT_CUDA_CHECK(cudaSetDevice(im.device));
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, block);
  if (e == cudaErrorMemoryAllocation && !im.free_lists.empty()) {
    (void)cudaGetLastError();
    ZT_CUDA_CHECK(cudaDeviceSynchronize());
    im.ReleaseCachedLocked();
    e = cudaMalloc(&p, block);
  }
  if (e != cudaSuccess) {
    (void)cudaGetLastError();  // do not leave the failure for a later kernel's launch check
    if (e != cudaErrorMemoryAllocation) return CudaStatus(e, "cudaMalloc(" + std::to_string(block) + ")");
    size_t free_b = 0, total_b = 0;
    cudaError_t qe = cudaMemGetInfo(&free_b, &total_b);
    if (qe != cudaSuccess) (void)cudaGetLastError();
    return Status(StatusCode::kUnavailable,
                  "out of GPU memory on cuda:" + std::to_string(im.device) + " allocating " + Bytes(accounted) +
                      " of " + MemCategoryName(category) + " (device free " + Bytes(free_b) + " of " + Bytes(total_b) +
                      ", this process holds " + Bytes(static_cast<size_t>(im.counters.reserved_bytes)) +
                      "); reduce the micro-batch size or sequence length, use a higher ZeRO stage, or use more GPUs");
  }
  ++im.counters.device_mallocs;
  im.counters.reserved_bytes += static_cast<int64_t>(block);
  im.live[p] = LiveBlock{block, accounted, category};
  im.stats.OnAlloc(category, accounted);
  return Buffer{p, accounted, category};
}

void CudaBackend::Free(Buffer& buffer) {
  if (buffer.data == nullptr) return;
  Impl& im = *impl_;
  std::lock_guard<std::mutex> l(im.mu);
  auto it = im.live.find(buffer.data);
  ZT_CHECK(it != im.live.end()) << "CudaBackend::Free: " << buffer.data << " was not allocated by this backend (or freed twice)";
  LiveBlock lb = it->second;
  ZT_CHECK(lb.accounted == buffer.bytes && lb.category == buffer.category)
      << "CudaBackend::Free: buffer fields changed since Allocate";
  im.live.erase(it);
  FreeBlock fb;
  fb.ptr = buffer.data;
  for (int k = 0; k < kNumStreamKinds; ++k) {
    fb.freed[k] = im.TakeEvent();
    ZT_CUDA_CHECK(cudaEventRecord(fb.freed[k], im.streams[k]->get()));
  }
  im.free_lists[lb.block_bytes].push_back(fb);
  im.counters.cached_bytes += static_cast<int64_t>(lb.block_bytes);
  im.stats.OnFree(lb.category, lb.accounted);
  buffer = Buffer{};
}

void CudaBackend::ReleaseCachedMemory() {
  Impl& im = *impl_;
  ZT_CUDA_CHECK(cudaSetDevice(im.device));
  ZT_CUDA_CHECK(cudaDeviceSynchronize());
  std::lock_guard<std::mutex> l(im.mu);
  im.ReleaseCachedLocked();
}

CudaAllocatorCounters CudaBackend::allocator_counters() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->counters;
}

StatusOr<void*> CudaBackend::AllocatePinned(size_t bytes) {
  Impl& im = *impl_;
  const size_t block = BlockSizeFor(bytes);
  std::lock_guard<std::mutex> l(im.mu);
  auto it = im.pinned_free.lower_bound(block);
  if (it != im.pinned_free.end() && it->first <= 2 * block) {
    void* p = it->second.back();
    size_t size = it->first;
    it->second.pop_back();
    if (it->second.empty()) im.pinned_free.erase(it);
    im.pinned_live[p] = size;
    return p;
  }
  void* p = nullptr;
  cudaError_t e = cudaHostAlloc(&p, block, cudaHostAllocDefault);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return Status(StatusCode::kUnavailable, "cannot allocate " + Bytes(block) + " of pinned host memory: " +
                                                std::string(cudaGetErrorString(e)) +
                                                "; reduce host memory use (offload, checkpoint copies)");
  }
  ++im.counters.pinned_mallocs;
  im.counters.pinned_reserved_bytes += static_cast<int64_t>(block);
  im.pinned_live[p] = block;
  return p;
}

void CudaBackend::FreePinned(void* p) {
  if (p == nullptr) return;
  Impl& im = *impl_;
  std::lock_guard<std::mutex> l(im.mu);
  auto it = im.pinned_live.find(p);
  ZT_CHECK(it != im.pinned_live.end()) << "CudaBackend::FreePinned: " << p << " was not allocated by AllocatePinned";
  im.pinned_free[it->second].push_back(p);
  im.pinned_live.erase(it);
}

void* CudaBackend::AllocateHost(size_t bytes) {
  // cudaHostAlloc does not page-align small blocks: over-allocate and align by hand.
  constexpr size_t kPage = 4096;
  auto pinned = AllocatePinned(bytes + kPage);
  if (pinned.ok()) {
    uintptr_t raw = reinterpret_cast<uintptr_t>(*pinned);
    void* aligned = reinterpret_cast<void*>((raw + kPage - 1) & ~uintptr_t{kPage - 1});
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->aligned_host[aligned] = *pinned;
    return aligned;
  }
  void* p = Backend::AllocateHost(bytes);
  Impl& im = *impl_;
  std::lock_guard<std::mutex> l(im.mu);
  if (!im.warned_unpinned) {
    ZT_LOG(WARNING) << pinned.status().message() << "; using pageable memory (device copies into it are synchronous)";
    im.warned_unpinned = true;
  }
  if (p != nullptr) im.unpinned_host.insert(p);
  return p;
}

void CudaBackend::FreeHost(void* p) {
  if (p == nullptr) return;
  {
    Impl& im = *impl_;
    std::lock_guard<std::mutex> l(im.mu);
    if (im.unpinned_host.erase(p) > 0) {
      Backend::FreeHost(p);
      return;
    }
    auto it = im.aligned_host.find(p);
    ZT_CHECK(it != im.aligned_host.end()) << "CudaBackend::FreeHost: " << p << " was not allocated by AllocateHost";
    p = it->second;
    im.aligned_host.erase(it);
  }
  FreePinned(p);
}

Stream& CudaBackend::stream(StreamKind k) { return *impl_->streams[static_cast<int>(k)]; }

std::unique_ptr<Event> CudaBackend::CreateEvent() {
  ZT_CUDA_CHECK(cudaSetDevice(impl_->device));
  return std::make_unique<CudaEvent>();
}

void CudaBackend::CopyHostToDevice(void* dst, const void* src, size_t n, Stream& s) {
  if (n) ZT_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, CudaStreamOf(s)));
}
void CudaBackend::CopyDeviceToHost(void* dst, const void* src, size_t n, Stream& s) {
  if (n) ZT_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, CudaStreamOf(s)));
}
void CudaBackend::CopyDeviceToDevice(void* dst, const void* src, size_t n, Stream& s) {
  if (n) ZT_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, CudaStreamOf(s)));
}
void CudaBackend::Memset(void* dst, int value, size_t n, Stream& s) {
  if (n) ZT_CUDA_CHECK(cudaMemsetAsync(dst, value, n, CudaStreamOf(s)));
}

void CudaBackend::Synchronize() {
  ZT_CUDA_CHECK(cudaSetDevice(impl_->device));
  ZT_CUDA_CHECK(cudaDeviceSynchronize());
}

cublasLtHandle_t CudaBackend::cublaslt() {
  std::lock_guard<std::mutex> l(impl_->handles_mu);
  if (impl_->cublaslt == nullptr) {
    ZT_CUDA_CHECK(cudaSetDevice(impl_->device));
    cublasStatus_t st = cublasLtCreate(&impl_->cublaslt);
    ZT_CHECK(st == CUBLAS_STATUS_SUCCESS) << "cublasLtCreate: " << cublasLtGetStatusName(st) << " ("
                                          << cublasLtGetStatusString(st) << ")";
  }
  return impl_->cublaslt;
}

cudnnHandle_t CudaBackend::cudnn() {
  std::lock_guard<std::mutex> l(impl_->handles_mu);
  if (impl_->cudnn == nullptr) {
    ZT_CUDA_CHECK(cudaSetDevice(impl_->device));
    cudnnStatus_t st = cudnnCreate(&impl_->cudnn);
    ZT_CHECK(st == CUDNN_STATUS_SUCCESS) << "cudnnCreate: " << cudnnGetErrorString(st)
                                         << " (is libcudnn 9 on the library path?)";
  }
  return impl_->cudnn;
}

}  // namespace zt
