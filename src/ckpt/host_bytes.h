// HostBytes: the byte buffer of a RankSnapshot. Like std::vector<char>, but (a) its storage is
// 4096-byte aligned, so O_DIRECT writes take it without a bounce copy, (b) it comes from a
// HostAllocator, so a GPU run can hand out page-locked memory that device-to-host copies fill
// asynchronously, and (c) growing it never zero-fills: whoever adds a section writes all of it.
// Invariants: data() is 4096-aligned whenever capacity() > 0; resize() within capacity() never
// moves the bytes (an asynchronous copy into them stays valid); bytes past size() are unspecified.
#pragma once

#include <cstddef>

namespace zt::ckpt {

inline constexpr size_t kHostBytesAlignment = 4096;

// Where snapshot memory comes from. The default (DefaultHostAllocator) is aligned_alloc.
class HostAllocator {
 public:
  virtual ~HostAllocator() = default;
  // At least `bytes` (a multiple of kHostBytesAlignment), 4096-aligned; null when out of memory.
  virtual void* Allocate(size_t bytes) = 0;
  virtual void Free(void* p) = 0;
};

HostAllocator& DefaultHostAllocator();

class HostBytes {
 public:
  explicit HostBytes(HostAllocator* allocator = nullptr);
  ~HostBytes();
  HostBytes(const HostBytes& other);
  HostBytes& operator=(const HostBytes& other);
  HostBytes(HostBytes&& other) noexcept;
  HostBytes& operator=(HostBytes&& other) noexcept;

  char* data() { return data_; }
  const char* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }

  // Sets the size; the first min(old size, n) bytes are kept, new bytes are unspecified. Moves
  // the storage only when n > capacity() (growing by at least half, like a vector).
  void resize(size_t n);
  // Makes capacity() >= n without changing the size.
  void reserve(size_t n);
  void clear() { size_ = 0; }  // keeps the storage for the next snapshot

  bool operator==(const HostBytes& other) const;

 private:
  void Reallocate(size_t capacity);
  void Release();

  HostAllocator* allocator_;
  char* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace zt::ckpt
