// HostBytes storage management and the default aligned allocator.
#include "ckpt/host_bytes.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/check.h"

namespace zt::ckpt {
namespace {

size_t RoundUp(size_t n) { return (n + kHostBytesAlignment - 1) / kHostBytesAlignment * kHostBytesAlignment; }

class AlignedAllocator final : public HostAllocator {
 public:
  void* Allocate(size_t bytes) override { return std::aligned_alloc(kHostBytesAlignment, RoundUp(bytes)); }
  void Free(void* p) override { std::free(p); }
};

}  // namespace

HostAllocator& DefaultHostAllocator() {
  static AlignedAllocator a;
  return a;
}

HostBytes::HostBytes(HostAllocator* allocator) : allocator_(allocator ? allocator : &DefaultHostAllocator()) {}

HostBytes::~HostBytes() { Release(); }

HostBytes::HostBytes(const HostBytes& other) : allocator_(other.allocator_) {
  resize(other.size_);
  if (size_ > 0) std::memcpy(data_, other.data_, size_);
}

HostBytes& HostBytes::operator=(const HostBytes& other) {
  if (this == &other) return *this;
  resize(other.size_);
  if (size_ > 0) std::memcpy(data_, other.data_, size_);
  return *this;
}

HostBytes::HostBytes(HostBytes&& other) noexcept
    : allocator_(other.allocator_), data_(other.data_), size_(other.size_), capacity_(other.capacity_) {
  other.data_ = nullptr;
  other.size_ = other.capacity_ = 0;
}

HostBytes& HostBytes::operator=(HostBytes&& other) noexcept {
  if (this == &other) return *this;
  Release();
  allocator_ = other.allocator_;
  data_ = other.data_;
  size_ = other.size_;
  capacity_ = other.capacity_;
  other.data_ = nullptr;
  other.size_ = other.capacity_ = 0;
  return *this;
}

void HostBytes::Release() {
  if (data_ != nullptr) allocator_->Free(data_);
  data_ = nullptr;
  size_ = capacity_ = 0;
}

void HostBytes::Reallocate(size_t capacity) {
  capacity = RoundUp(capacity);
  char* fresh = static_cast<char*>(allocator_->Allocate(capacity));
  ZT_CHECK(fresh != nullptr) << "out of host memory: cannot allocate a " << capacity << "-byte snapshot buffer";
  ZT_CHECK(reinterpret_cast<uintptr_t>(fresh) % kHostBytesAlignment == 0) << "snapshot buffer is not 4096-aligned";
  if (size_ > 0) std::memcpy(fresh, data_, size_);
  if (data_ != nullptr) allocator_->Free(data_);
  data_ = fresh;
  capacity_ = capacity;
}

void HostBytes::reserve(size_t n) {
  if (n > capacity_) Reallocate(n);
}

void HostBytes::resize(size_t n) {
  if (n > capacity_) Reallocate(std::max(n, capacity_ + capacity_ / 2));
  size_ = n;
}

bool HostBytes::operator==(const HostBytes& other) const {
  return size_ == other.size_ && (size_ == 0 || std::memcmp(data_, other.data_, size_) == 0);
}

}  // namespace zt::ckpt
