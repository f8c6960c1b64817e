// RankSnapshot sections and the snapshot pool.
#include "ckpt/snapshot.h"

namespace zt::ckpt {

const SnapshotSection* RankSnapshot::Find(const std::string& name) const {
  for (const auto& s : sections)
    if (s.name == name) return &s;
  return nullptr;
}

char* RankSnapshot::AddSection(const std::string& name, DType dtype, int64_t numel) {
  size_t off = (bytes.size() + 4095) / 4096 * 4096;
  SnapshotSection s{name, dtype, numel, off};
  bytes.resize(off + s.nbytes());
  sections.push_back(s);
  return bytes.data() + off;
}

std::unique_ptr<RankSnapshot> SnapshotPool::Acquire() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return !free_.empty(); });
  auto s = std::move(free_.back());
  free_.pop_back();
  s->sections.clear();
  s->bytes.clear();  // keeps capacity: later snapshots reuse the allocation
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
