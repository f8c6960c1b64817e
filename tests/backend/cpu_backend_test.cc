// CpuBackend allocator accounting (live/peak per category and in total, where the total peak is
// the peak of the sum, not the sum of per-category peaks), 256-byte alignment, ResetPeaks, Free
// resetting the buffer; ParallelFor covering [0, n) exactly once, in chunks of at least `grain`.
#include <gtest/gtest.h>

#include <omp.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/parallel.h"
#include "backend/memory_stats.h"

namespace zt {
namespace {

constexpr MemCategory kAct = MemCategory::kActivations;
constexpr MemCategory kParam = MemCategory::kParameters;
constexpr MemCategory kGrad = MemCategory::kGradients;

Buffer Alloc(CpuBackend& be, size_t bytes, MemCategory c) {
  auto b = be.Allocate(bytes, c);
  ZT_CHECK(b.ok()) << b.status().ToString();
  return *b;
}

TEST(CpuBackend, AllocationsAreAlignedAndRoundedUp) {
  CpuBackend be;
  EXPECT_EQ(be.kind(), DeviceKind::kCPU);
  EXPECT_NE(be.Describe().find("cpu"), std::string::npos);
  for (size_t bytes : {size_t{0}, size_t{1}, size_t{255}, size_t{256}, size_t{257}, size_t{1000}, size_t{4096},
                       size_t{100003}}) {
    Buffer b = Alloc(be, bytes, kAct);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data) % kMemAlignment, 0u) << bytes;
    size_t want = bytes == 0 ? kMemAlignment : (bytes + 255) / 256 * 256;
    EXPECT_EQ(b.bytes, want) << bytes;
    EXPECT_EQ(b.category, kAct);
    std::memset(b.data, 0xab, b.bytes);  // all accounted bytes are usable
    EXPECT_EQ(be.stats().live(kAct), static_cast<int64_t>(want));
    be.Free(b);
    EXPECT_EQ(b.data, nullptr) << "Free resets the buffer";
    EXPECT_EQ(b.bytes, 0u);
    EXPECT_EQ(be.stats().live(kAct), 0);
  }
  Buffer empty;
  be.Free(empty);  // freeing a reset buffer is a no-op
  EXPECT_EQ(be.stats().live_total(), 0);
}

TEST(CpuBackend, LiveAndPeakPerCategoryAndTotal) {
  CpuBackend be;
  MemoryStats& s = be.stats();
  Buffer a = Alloc(be, 1000, kAct);    // 1024
  Buffer p = Alloc(be, 300, kParam);   // 512
  EXPECT_EQ(s.live(kAct), 1024);
  EXPECT_EQ(s.live(kParam), 512);
  EXPECT_EQ(s.live_total(), 1536);
  EXPECT_EQ(s.peak_total(), 1536);
  be.Free(a);
  Buffer g = Alloc(be, 2048, kGrad);   // 2048: total 2560 now
  EXPECT_EQ(s.live(kAct), 0);
  EXPECT_EQ(s.peak(kAct), 1024);
  EXPECT_EQ(s.peak(kGrad), 2048);
  EXPECT_EQ(s.live_total(), 2560);
  // Peak of the sum (2560), not the sum of the peaks (1024 + 512 + 2048 = 3584).
  EXPECT_EQ(s.peak_total(), 2560);
  be.Free(g);
  Buffer a2 = Alloc(be, 256, kAct);
  EXPECT_EQ(s.peak(kAct), 1024);
  EXPECT_EQ(s.peak_total(), 2560);
  EXPECT_EQ(s.live(MemCategory::kWorkspace), 0);
  EXPECT_EQ(s.peak(MemCategory::kWorkspace), 0);

  s.ResetPeaks();  // peaks := live now (act 256, param 512)
  EXPECT_EQ(s.peak(kAct), 256);
  EXPECT_EQ(s.peak(kGrad), 0);
  EXPECT_EQ(s.peak(kParam), 512);
  EXPECT_EQ(s.peak_total(), 768);
  Buffer w = Alloc(be, 10, MemCategory::kWorkspace);
  EXPECT_EQ(s.peak_total(), 1024);
  std::string text = s.ToString();
  EXPECT_NE(text.find("workspace live 256 peak 256"), std::string::npos) << text;
  EXPECT_NE(text.find("total live 1024 peak 1024"), std::string::npos) << text;
  be.Free(w);
  be.Free(a2);
  be.Free(p);
  EXPECT_EQ(s.live_total(), 0);
  EXPECT_EQ(s.peak_total(), 1024);
}

TEST(MemoryStatsDeathTest, FreeingMoreThanAllocatedDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MemoryStats s;
  s.OnAlloc(kAct, 256);
  EXPECT_DEATH(s.OnFree(kAct, 512), "freed more activations bytes than allocated");
}

TEST(MemoryStats, ConcurrentUpdatesBalance) {
  MemoryStats s;
#pragma omp parallel for num_threads(4)
  for (int i = 0; i < 4000; ++i) {
    s.OnAlloc(kAct, 256);
    s.OnFree(kAct, 256);
  }
  EXPECT_EQ(s.live(kAct), 0);
  EXPECT_GE(s.peak(kAct), 256);
  EXPECT_LE(s.peak(kAct), 4 * 256);
}

// Runs ParallelFor and checks that every index is visited exactly once, in contiguous chunks of
// at least `grain` items (the last chunk of a single-chunk run may be all of n < grain).
void CheckCoverage(int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(std::max<int64_t>(n, 0)));
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  ParallelFor(n, grain, [&](int64_t begin, int64_t end) {
    {
      std::lock_guard<std::mutex> l(mu);
      chunks.push_back({begin, end});
    }
    for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "n " << n << " grain " << grain << " index " << i;
  if (n <= 0) {
    EXPECT_TRUE(chunks.empty());
    return;
  }
  ASSERT_FALSE(chunks.empty());
  for (auto& [b, e] : chunks) {
    EXPECT_LT(b, e) << "empty chunk";
    if (chunks.size() > 1) {
      EXPECT_GE(e - b, std::max<int64_t>(grain, 1)) << "n " << n << " grain " << grain;
    }
  }
}

TEST(ParallelFor, CoversRangeExactlyOnce) {
  for (int64_t n : {0, 1, 2, 3, 7, 31, 101, 1001, 4097, 10007}) {
    for (int64_t grain : {0, 1, 2, 3, 7, 64, 1000, 5000}) CheckCoverage(n, grain);
  }
  CheckCoverage(-5, 1);
}

TEST(ParallelFor, CoversRangeWithManyThreads) {
  int saved = omp_get_max_threads();
  omp_set_num_threads(std::max(8, 2 * omp_get_num_procs()));
  for (int64_t n : {1, 5, 9, 33, 1001}) {
    for (int64_t grain : {1, 2, 5}) CheckCoverage(n, grain);
  }
  omp_set_num_threads(saved);
}

// OpenMP may give a parallel region fewer threads than it asked for (dynamic adjustment, thread
// limits); the partition must follow the team actually obtained, or chunks are silently skipped.
TEST(ParallelFor, CoversRangeWhenTheTeamIsSmallerThanAsked) {
  int saved = omp_get_max_threads();
  int saved_dynamic = omp_get_dynamic();
  omp_set_num_threads(4 * omp_get_num_procs() + 3);  // more than dynamic adjustment will grant
  omp_set_dynamic(1);
  for (int64_t n : {64, 1001, 100003}) CheckCoverage(n, 1);
  omp_set_dynamic(saved_dynamic);
  omp_set_num_threads(saved);
}

TEST(ParallelFor, NestedCallsRunInline) {
  std::atomic<int64_t> total{0};
  ParallelFor(8, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      ParallelFor(100, 1, [&](int64_t b2, int64_t e2) { total += e2 - b2; });
    }
  });
  EXPECT_EQ(total.load(), 800);
}

}  // namespace
}  // namespace zt
