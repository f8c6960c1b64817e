// RankSnapshot sections and the snapshot pool.
#include "ckpt/snapshot.h"

#include <cstring>

namespace zt::ckpt {

const SnapshotSection* RankSnapshot::Find(const std::string& name) const {
  for (const auto& s : sections)
    if (s.name == name) return &s;
  return nullptr;
}

namespace {
size_t AlignSection(size_t n) { return (n + 4095) / 4096 * 4096; }
}  // namespace

char* RankSnapshot::AddSection(const std::string& name, DType dtype, int64_t numel) {
  const size_t old = bytes.size();
  size_t off = AlignSection(old);
  SnapshotSection s{name, dtype, numel, off};
  bytes.resize(off + s.nbytes());
  std::memset(bytes.data() + old, 0, off - old);  // the gap is checksummed: keep it deterministic
  sections.push_back(s);
  return bytes.data() + off;
}

size_t RankSnapshot::BytesToAdd(const std::vector<size_t>& section_bytes) const {
  size_t end = bytes.size();
  for (size_t n : section_bytes) end = AlignSection(end) + n;
  return end - bytes.size();
}

std::unique_ptr<RankSnapshot> SnapshotPool::Acquire() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return !free_.empty(); });
  auto s = std::move(free_.back());
  free_.pop_back();
  s->sections.clear();
  s->bytes.clear();  // keeps the storage: later snapshots reuse the allocation
  return s;
}

void SnapshotPool::Release(std::unique_ptr<RankSnapshot> s) {
  {
    std::lock_guard<std::mutex> l(mu_);
    free_.push_back(std::move(s));
  }
  cv_.notify_one();
}

int SnapshotPool::available() const {
  std::lock_guard<std::mutex> l(mu_);
  return static_cast<int>(free_.size());
}

}  // namespace zt::ckpt
