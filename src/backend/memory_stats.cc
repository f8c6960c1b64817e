// MemoryStats bookkeeping.
#include "backend/memory_stats.h"

#include <algorithm>

#include "core/check.h"

namespace zt {

void MemoryStats::OnAlloc(MemCategory c, size_t bytes) {
  std::lock_guard<std::mutex> l(mu_);
  int i = static_cast<int>(c);
  live_[i] += static_cast<int64_t>(bytes);
  peak_[i] = std::max(peak_[i], live_[i]);
  live_total_ += static_cast<int64_t>(bytes);
  peak_total_ = std::max(peak_total_, live_total_);
}

void MemoryStats::OnFree(MemCategory c, size_t bytes) {
  std::lock_guard<std::mutex> l(mu_);
  int i = static_cast<int>(c);
  live_[i] -= static_cast<int64_t>(bytes);
  live_total_ -= static_cast<int64_t>(bytes);
  ZT_CHECK_GE(live_[i], 0) << "freed more " << MemCategoryName(c) << " bytes than allocated";
}

int64_t MemoryStats::live(MemCategory c) const {
  std::lock_guard<std::mutex> l(mu_);
  return live_[static_cast<int>(c)];
}
int64_t MemoryStats::peak(MemCategory c) const {
  std::lock_guard<std::mutex> l(mu_);
  return peak_[static_cast<int>(c)];
}
int64_t MemoryStats::live_total() const {
  std::lock_guard<std::mutex> l(mu_);
  return live_total_;
}
int64_t MemoryStats::peak_total() const {
  std::lock_guard<std::mutex> l(mu_);
  return peak_total_;
}

void MemoryStats::ResetPeaks() {
  std::lock_guard<std::mutex> l(mu_);
  peak_ = live_;
  peak_total_ = live_total_;
}

MemoryStats::Snapshot MemoryStats::Snap() const {
  std::lock_guard<std::mutex> l(mu_);
  return Snapshot{live_, peak_, live_total_, peak_total_};
}

std::string MemoryStats::ToString() const {
  std::lock_guard<std::mutex> l(mu_);
  std::string s;
  for (int i = 0; i < kNumMemCategories; ++i) {
    s += std::string(MemCategoryName(static_cast<MemCategory>(i))) + " live " +
         std::to_string(live_[i]) + " peak " + std::to_string(peak_[i]) + "\n";
  }
  s += "total live " + std::to_string(live_total_) + " peak " + std::to_string(peak_total_) + "\n";
  return s;
}

}  // namespace zt
