// HostBytes: storage is 4096-aligned and comes from the given allocator; resizing within the
// capacity never moves the bytes (queued device copies stay valid) and keeps the contents; growth
// keeps the contents; copies are deep, moves hand the storage over; RankSnapshot sections are
// 4096-aligned with zeroed gaps, and BytesToAdd predicts what AddSection adds.
#include "ckpt/host_bytes.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>

#include "ckpt/snapshot.h"

namespace zt::ckpt {
namespace {

class RecordingAllocator final : public HostAllocator {
 public:
  void* Allocate(size_t bytes) override {
    ++allocations;
    last_bytes = bytes;
    void* p = DefaultHostAllocator().Allocate(bytes);
    live.insert(p);
    return p;
  }
  void Free(void* p) override {
    EXPECT_EQ(live.erase(p), 1u) << "freed memory this allocator did not give";
    DefaultHostAllocator().Free(p);
  }
  int allocations = 0;
  size_t last_bytes = 0;
  std::set<void*> live;
};

bool Aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kHostBytesAlignment == 0; }

TEST(HostBytes, AlignedStorageFromTheAllocatorThatDoesNotMoveWithinCapacity) {
  RecordingAllocator a;
  {
    HostBytes b(&a);
    EXPECT_EQ(b.size(), 0u);
    b.reserve(10000);
    EXPECT_EQ(a.allocations, 1);
    EXPECT_EQ(a.last_bytes % kHostBytesAlignment, 0u);
    EXPECT_GE(b.capacity(), 10000u);
    EXPECT_TRUE(Aligned(b.data()));
    char* before = b.data();
    b.resize(5000);
    std::memset(b.data(), 7, 5000);
    b.resize(10000);
    EXPECT_EQ(b.data(), before) << "resizing within the capacity moved the bytes";
    EXPECT_EQ(b.data()[4999], 7);
    b.clear();
    b.resize(8000);
    EXPECT_EQ(b.data(), before);
    EXPECT_EQ(a.allocations, 1);
    // Growth keeps the contents.
    b.resize(3);
    std::memcpy(b.data(), "abc", 3);
    b.resize(1 << 20);
    EXPECT_EQ(a.allocations, 2);
    EXPECT_TRUE(Aligned(b.data()));
    EXPECT_EQ(std::memcmp(b.data(), "abc", 3), 0);
    EXPECT_EQ(a.live.size(), 1u) << "the old storage is freed when the bytes move";
  }
  EXPECT_TRUE(a.live.empty()) << "the destructor frees the storage";
}

TEST(HostBytes, CopiesAreDeepAndMovesHandTheStorageOver) {
  RecordingAllocator a;
  HostBytes b(&a);
  b.resize(100);
  for (int i = 0; i < 100; ++i) b.data()[i] = static_cast<char>(i);
  HostBytes c = b;
  EXPECT_TRUE(c == b);
  EXPECT_NE(c.data(), b.data());
  c.data()[5] = 99;
  EXPECT_FALSE(c == b);
  const char* storage = b.data();
  HostBytes d = std::move(b);
  EXPECT_EQ(d.data(), storage);
  EXPECT_EQ(d.size(), 100u);
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.data(), nullptr);
  c = d;
  EXPECT_TRUE(c == d);
  HostBytes e;
  EXPECT_TRUE(e == HostBytes());
  EXPECT_FALSE(e == d);
}

TEST(RankSnapshot, SectionsAreAlignedWithZeroGapsAndBytesToAddIsExact) {
  RecordingAllocator a;
  RankSnapshot s(&a);
  // Dirty storage, as a reused pool buffer has.
  s.bytes.resize(3 * 4096);
  std::memset(s.bytes.data(), 0x5a, s.bytes.size());
  s.bytes.clear();
  const std::vector<size_t> sizes = {10, 4096 * 4, 12};
  const size_t add = s.BytesToAdd(sizes);
  char* p0 = s.AddSection("a", DType::kU8, 10);
  std::memset(p0, 1, 10);
  s.AddSection("b", DType::kF32, 4096);
  s.AddSection("c", DType::kF32, 3);
  EXPECT_EQ(s.bytes.size(), add);
  for (const auto& sec : s.sections) EXPECT_EQ(sec.offset % 4096, 0u) << sec.name;
  for (size_t i = 10; i < 4096; ++i) ASSERT_EQ(s.bytes.data()[i], 0) << "gap byte " << i << " is not zero";
  EXPECT_EQ(s.Find("c")->offset, 4096u * 5);
  EXPECT_EQ(s.BytesToAdd({}), 0u);
  // The bytes end at 5 * 4096 + 12; a 1-byte section would start at 6 * 4096.
  EXPECT_EQ(s.BytesToAdd({1}), 6u * 4096 + 1 - (5u * 4096 + 12));
}

TEST(SnapshotPool, BuffersUseThePoolsAllocator) {
  RecordingAllocator a;
  {
    SnapshotPool pool(2, &a);
    auto s = pool.Acquire();
    s->AddSection("x", DType::kF32, 100);
    EXPECT_EQ(a.live.count(s->bytes.data()), 1u);
    pool.Release(std::move(s));
  }
  EXPECT_TRUE(a.live.empty());
}

}  // namespace
}  // namespace zt::ckpt
