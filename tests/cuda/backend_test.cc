// CudaBackend (GPU; skipped without one): device selection errors, size classes, the caching
// allocator (a freed block comes back for the same size class, no cudaMalloc once warm, reuse
// waits for work still queued on other streams), per-category stats identical to the CPU
// backend's, out of memory as a Status, copies and memset, events ordering two streams, pinned
// memory reuse, library handles, and the peak flop table.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "support/device_compare.h"
#ifdef ZT_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace zt {
namespace {

#ifdef ZT_WITH_CUDA

constexpr MemCategory kAct = MemCategory::kActivations;
constexpr MemCategory kParam = MemCategory::kParameters;
constexpr MemCategory kGrad = MemCategory::kGradients;

std::unique_ptr<CudaBackend> MakeBackend() {
  auto b = CudaBackend::Create(0);
  ZT_CHECK(b.ok()) << b.status().ToString();
  return std::move(*b);
}

Buffer Alloc(Backend& be, size_t bytes, MemCategory c) {
  auto b = be.Allocate(bytes, c);
  ZT_CHECK(b.ok()) << b.status().ToString();
  return *b;
}

TEST(CudaBackend, CreateRejectsADeviceThatDoesNotExistNamingTheCount) {
  ZT_SKIP_WITHOUT_CUDA();
  int n = CudaDeviceCount();
  ASSERT_GT(n, 0);
  auto b = CudaBackend::Create(n);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(b.status().message().find(std::to_string(n) + " device"), std::string::npos) << b.status().message();
  EXPECT_NE(b.status().message().find("LOCAL_RANK"), std::string::npos) << b.status().message();
  EXPECT_FALSE(CudaBackend::Create(-1).ok());
}

TEST(CudaBackend, DescribesTheDeviceAndItsPeak) {
  ZT_SKIP_WITHOUT_CUDA();
  auto be = MakeBackend();
  EXPECT_EQ(be->kind(), DeviceKind::kCUDA);
  EXPECT_EQ(be->device(), 0);
  std::string name = be->properties().name;
  EXPECT_NE(be->Describe().find("cuda:0"), std::string::npos) << be->Describe();
  EXPECT_NE(be->Describe().find(name), std::string::npos) << be->Describe();
  bool sxm_class = (name.find("H100") != std::string::npos && name.find("PCIe") == std::string::npos &&
                    name.find("NVL") == std::string::npos) ||
                   name.find("H200") != std::string::npos;
  if (sxm_class) {
    EXPECT_EQ(be->PeakFlops(DType::kBF16), 989e12);
    EXPECT_EQ(be->PeakFlops(DType::kF16), 989e12);
    EXPECT_EQ(be->PeakFlops(DType::kF32), 494e12);
  }
  EXPECT_EQ(be->PeakFlops(DType::kI32), 0);
}

TEST(CudaBackend, BlockSizeClasses) {
  // Pure arithmetic: runs without a GPU too.
  EXPECT_EQ(CudaBackend::BlockSizeFor(0), 512u);
  EXPECT_EQ(CudaBackend::BlockSizeFor(1), 512u);
  EXPECT_EQ(CudaBackend::BlockSizeFor(512), 512u);
  EXPECT_EQ(CudaBackend::BlockSizeFor(513), 1024u);
  EXPECT_EQ(CudaBackend::BlockSizeFor(1 << 20), size_t{1} << 20);
  EXPECT_EQ(CudaBackend::BlockSizeFor((1 << 20) + 1), size_t{2} << 20);
  EXPECT_EQ(CudaBackend::BlockSizeFor(5 << 20), size_t{6} << 20);
}

TEST(CudaBackend, AFreedBlockIsReusedForTheSameSizeClass) {
  ZT_SKIP_WITHOUT_CUDA();
  auto be = MakeBackend();
  auto c0 = be->allocator_counters();
  Buffer a = Alloc(*be, 1000, kAct);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data) % kMemAlignment, 0u);
  EXPECT_EQ(a.bytes, 1024u) << "accounted as AlignedBytes of the request";
  EXPECT_EQ(be->allocator_counters().device_mallocs, c0.device_mallocs + 1);
  void* p = a.data;
  be->Free(a);
  EXPECT_EQ(a.data, nullptr) << "Free resets the buffer";
  EXPECT_EQ(be->allocator_counters().cached_bytes, 1024);
  Buffer b = Alloc(*be, 1000, kAct);
  EXPECT_EQ(b.data, p) << "same size twice after a free gives the same block";
  Buffer c = Alloc(*be, 1000, kAct);  // the cache is empty now: a new block
  EXPECT_NE(c.data, p);
  be->Free(b);
  Buffer d = Alloc(*be, 600, kGrad);  // a smaller request of the same class (1024)
  EXPECT_EQ(d.data, p);
  EXPECT_EQ(d.bytes, 768u);
  // Large blocks (2 MiB classes).
  Buffer big = Alloc(*be, (3 << 20) + 5, kParam);
  void* q = big.data;
  be->Free(big);
  Buffer big2 = Alloc(*be, (3 << 20) + 1000, kParam);
  EXPECT_EQ(big2.data, q);
  auto c1 = be->allocator_counters();
  EXPECT_EQ(c1.device_mallocs, c0.device_mallocs + 3);
  EXPECT_EQ(c1.cache_hits, c0.cache_hits + 3);
  // A much smaller request does not take a far larger cached block.
  be->Free(big2);
  Buffer small = Alloc(*be, 100, kAct);
  EXPECT_NE(small.data, q);
  for (Buffer* x : {&c, &d, &small}) be->Free(*x);
  EXPECT_EQ(be->stats().live_total(), 0);
  be->ReleaseCachedMemory();
  EXPECT_EQ(be->allocator_counters().cached_bytes, 0);
  EXPECT_EQ(be->allocator_counters().reserved_bytes, 0);
}

TEST(CudaBackend, StatsPerCategoryEqualTheCpuBackends) {
  ZT_SKIP_WITHOUT_CUDA();
  auto gpu = MakeBackend();
  CpuBackend cpu;
  struct Op {
    bool alloc;
    size_t bytes;
    MemCategory c;
    int slot;
  };
  const std::vector<Op> ops = {{true, 1000, kAct, 0},   {true, 300, kParam, 1},      {true, 0, kGrad, 2},
                               {false, 0, kAct, 0},     {true, 5 << 20, kGrad, 3},   {true, 256, kAct, 4},
                               {false, 0, kGrad, 3},    {true, 77777, MemCategory::kWorkspace, 5},
                               {false, 0, kParam, 1},   {true, 1000, kAct, 0}};
  Buffer gb[6], cb[6];
  for (const Op& op : ops) {
    if (op.alloc) {
      gb[op.slot] = Alloc(*gpu, op.bytes, op.c);
      cb[op.slot] = Alloc(cpu, op.bytes, op.c);
      EXPECT_EQ(gb[op.slot].bytes, cb[op.slot].bytes) << op.bytes;
    } else {
      gpu->Free(gb[op.slot]);
      cpu.Free(cb[op.slot]);
    }
    auto g = gpu->stats().Snap(), c = cpu.stats().Snap();
    EXPECT_EQ(g.live, c.live);
    EXPECT_EQ(g.peak, c.peak);
    EXPECT_EQ(g.live_total, c.live_total);
    EXPECT_EQ(g.peak_total, c.peak_total);
  }
  EXPECT_GT(gpu->stats().peak_total(), 0);
  for (int i = 0; i < 6; ++i) {
    gpu->Free(gb[i]);
    cpu.Free(cb[i]);
  }
  EXPECT_EQ(gpu->stats().live_total(), 0);
}

TEST(CudaBackend, NoCudaMallocAfterWarmUp) {
  ZT_SKIP_WITHOUT_CUDA();
  auto be = MakeBackend();
  const std::vector<std::pair<size_t, MemCategory>> step = {
      {4096, kAct}, {123457, kAct}, {3 << 20, kGrad}, {100, MemCategory::kWorkspace}, {(9 << 20) + 3, kAct}};
  int64_t after_warmup = 0;
  for (int iter = 0; iter < 5; ++iter) {
    std::vector<Buffer> held;
    for (auto [bytes, c] : step) held.push_back(Alloc(*be, bytes, c));
    be->Memset(held[2].data, 0, held[2].bytes, be->stream(StreamKind::kCompute));
    for (Buffer& b : held) be->Free(b);
    if (iter == 0) after_warmup = be->allocator_counters().device_mallocs;
  }
  EXPECT_EQ(be->allocator_counters().device_mallocs, after_warmup);
  EXPECT_EQ(be->allocator_counters().cache_hits, 4 * static_cast<int64_t>(step.size()));
  be->Synchronize();
}

TEST(CudaBackend, OutOfMemoryIsAStatusNamingCategoryAndSize) {
  ZT_SKIP_WITHOUT_CUDA();
  auto be = MakeBackend();
  Buffer keep = Alloc(*be, 1 << 20, kAct);
  Buffer cached = Alloc(*be, 2 << 20, kAct);
  be->Free(cached);  // released by the retry
  size_t huge = be->properties().totalGlobalMem * 2;
  auto r = be->Allocate(huge, MemCategory::kOptimizerState);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  const std::string& m = r.status().message();
  EXPECT_NE(m.find(MemCategoryName(MemCategory::kOptimizerState)), std::string::npos) << m;
  EXPECT_NE(m.find(std::to_string(AlignedBytes(huge))), std::string::npos) << m;
  EXPECT_NE(m.find("free"), std::string::npos) << m;
  EXPECT_EQ(be->allocator_counters().cached_bytes, 0) << "the retry released the cache";
  EXPECT_EQ(be->stats().live(MemCategory::kOptimizerState), 0);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "no error left pending for the next kernel";
  // The backend still works.
  Buffer after = Alloc(*be, 4096, kAct);
  be->Memset(after.data, 7, 4096, be->stream(StreamKind::kCompute));
  unsigned char host[4096];
  be->CopyDeviceToHost(host, after.data, sizeof(host), be->stream(StreamKind::kCompute));
  be->stream(StreamKind::kCompute).Synchronize();
  EXPECT_EQ(host[0], 7);
  EXPECT_EQ(host[4095], 7);
  be->Free(after);
  be->Free(keep);
}

TEST(CudaBackend, CopiesAndMemsetRoundTrip) {
  ZT_SKIP_WITHOUT_CUDA();
  auto be = MakeBackend();
  const size_t n = 1000003;
  std::vector<unsigned char> src(n), back(n, 0);
  for (size_t i = 0; i < n; ++i) src[i] = static_cast<unsigned char>(i * 131 + 7);
  Buffer a = Alloc(*be, n, kAct), b = Alloc(*be, n, kAct);
  Stream& copy = be->stream(StreamKind::kCopy);
  be->CopyHostToDevice(a.data, src.data(), n, copy);
  be->CopyDeviceToDevice(b.data, a.data, n, copy);
  be->Memset(static_cast<char*>(b.data) + 10, 0xAB, 5, copy);
  be->CopyDeviceToHost(back.data(), b.data, n, copy);
  copy.Synchronize();
  for (size_t i = 0; i < n; ++i) {
    unsigned char want = i >= 10 && i < 15 ? 0xAB : src[i];
    ASSERT_EQ(back[i], want) << i;
  }
  be->Free(a);
  be->Free(b);
}

// Fills `x` (bytes) with `value` `times` times on stream s: long enough that another stream
// starting without waiting would see an older value.
void SlowFill(CudaBackend& be, Buffer& x, int value, int times, Stream& s) {
  for (int i = 0; i < times; ++i) be.Memset(x.data, i + 1 == times ? value : 0x11, x.bytes, s);
}

TEST(CudaBackend, EventsOrderTwoStreams) {
  ZT_SKIP_WITHOUT_CUDA();
  auto be = MakeBackend();
  Stream& a = be->stream(StreamKind::kCompute);
  Stream& b = be->stream(StreamKind::kComm);
  const size_t n = size_t{512} << 20;
  Buffer x = Alloc(*be, n, kAct);
  be->Memset(x.data, 0, n, a);
  be->Synchronize();
  void* pinned = *be->AllocatePinned(256);
  for (int round = 0; round < 3; ++round) {
    int value = 0x22 + round;
    SlowFill(*be, x, value, 16, a);
    auto e = be->CreateEvent();
    e->Record(a);
    e->StreamWait(b);  // b's copy starts after a's last fill
    std::memset(pinned, 0, 256);
    be->CopyDeviceToHost(pinned, static_cast<char*>(x.data) + n - 256, 256, b);
    b.Synchronize();
    for (int i = 0; i < 256; ++i) ASSERT_EQ(static_cast<unsigned char*>(pinned)[i], value) << "round " << round;
    // Host-side wait on an event.
    SlowFill(*be, x, value + 0x10, 16, a);
    auto e2 = be->CreateEvent();
    e2->Record(a);
    e2->Synchronize();
    std::memset(pinned, 0, 256);
    be->CopyDeviceToHost(pinned, x.data, 256, b);
    b.Synchronize();
    ASSERT_EQ(static_cast<unsigned char*>(pinned)[0], value + 0x10) << "round " << round;
  }
  be->FreePinned(pinned);
  be->Free(x);
}

TEST(CudaBackend, AReusedBlockWaitsForWorkQueuedBeforeItsFree) {
  ZT_SKIP_WITHOUT_CUDA();
  auto be = MakeBackend();
  Stream& comm = be->stream(StreamKind::kComm);
  Stream& compute = be->stream(StreamKind::kCompute);
  const size_t n = size_t{512} << 20;
  unsigned char host[256];
  for (int round = 0; round < 3; ++round) {
    Buffer x = Alloc(*be, n, kAct);
    void* p = x.data;
    SlowFill(*be, x, 0x11, 16, comm);  // still running when freed
    be->Free(x);
    Buffer y = Alloc(*be, n, kGrad);
    ASSERT_EQ(y.data, p);
    be->Memset(y.data, 0x5A, 256, compute);  // must land after every fill on comm
    be->Synchronize();
    be->CopyDeviceToHost(host, y.data, sizeof(host), compute);
    compute.Synchronize();
    for (int i = 0; i < 256; ++i) ASSERT_EQ(host[i], 0x5A) << "round " << round << " byte " << i;
    be->Free(y);
  }
}

TEST(CudaBackend, PinnedMemoryIsCachedAndReused) {
  ZT_SKIP_WITHOUT_CUDA();
  auto be = MakeBackend();
  auto p = be->AllocatePinned(1000);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  std::memset(*p, 1, 1000);
  int64_t mallocs = be->allocator_counters().pinned_mallocs;
  be->FreePinned(*p);
  auto q = be->AllocatePinned(900);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q, *p);
  EXPECT_EQ(be->allocator_counters().pinned_mallocs, mallocs);
  auto r = be->AllocatePinned(900);
  EXPECT_NE(*r, *q);
  be->FreePinned(*q);
  be->FreePinned(*r);
}

TEST(CudaBackend, LibraryHandlesAreCreatedOnce) {
  ZT_SKIP_WITHOUT_CUDA();
  auto be = MakeBackend();
  cublasLtHandle_t lt = be->cublaslt();
  EXPECT_NE(lt, nullptr);
  EXPECT_EQ(be->cublaslt(), lt);
  cudnnHandle_t dnn = be->cudnn();
  EXPECT_NE(dnn, nullptr);
  EXPECT_EQ(be->cudnn(), dnn);
}

TEST(CudaBackend, StreamsAreDistinctAndKnown) {
  ZT_SKIP_WITHOUT_CUDA();
  auto be = MakeBackend();
  cudaStream_t s0 = CudaStreamOf(be->stream(StreamKind::kCompute));
  cudaStream_t s1 = CudaStreamOf(be->stream(StreamKind::kComm));
  cudaStream_t s2 = CudaStreamOf(be->stream(StreamKind::kCopy));
  EXPECT_NE(s0, s1);
  EXPECT_NE(s1, s2);
  EXPECT_NE(s0, s2);
  EXPECT_NE(s0, nullptr) << "not the legacy default stream";
  unsigned flags = 0;
  ASSERT_EQ(cudaStreamGetFlags(s0, &flags), cudaSuccess);
  EXPECT_EQ(flags & cudaStreamNonBlocking, static_cast<unsigned>(cudaStreamNonBlocking));
}

#else

TEST(CudaBackend, NotBuilt) { GTEST_SKIP() << "CUDA is not built"; }

#endif

}  // namespace
}  // namespace zt
