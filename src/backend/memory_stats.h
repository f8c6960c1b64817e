// MemoryStats: live and peak bytes per memory category (and in total), as measured by an
// allocator. Thread-safe. Invariant: live bytes never go negative (a double free is a CHECK).
// Sizes are counted rounded up to kMemAlignment, exactly as the static memory planner counts them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

#include "core/mem_category.h"

namespace zt {

class MemoryStats {
 public:
  void OnAlloc(MemCategory c, size_t bytes);
  void OnFree(MemCategory c, size_t bytes);
  int64_t live(MemCategory c) const;
  int64_t peak(MemCategory c) const;
  int64_t live_total() const;
  int64_t peak_total() const;  // peak of the sum, not the sum of peaks
  void ResetPeaks();           // peaks := current live values
  // A consistent copy of every counter (taken under one lock).
  struct Snapshot {
    std::array<int64_t, kNumMemCategories> live{}, peak{};
    int64_t live_total = 0, peak_total = 0;
  };
  Snapshot Snap() const;
  std::string ToString() const;

 private:
  mutable std::mutex mu_;
  std::array<int64_t, kNumMemCategories> live_{};
  std::array<int64_t, kNumMemCategories> peak_{};
  int64_t live_total_ = 0;
  int64_t peak_total_ = 0;
};

}  // namespace zt
