// In-process store.
#include "comm/memory_store.h"

namespace zt::comm {

std::string JoinKeys(const std::vector<std::string>& keys, size_t max) {
  std::string s;
  for (size_t i = 0; i < keys.size() && i < max; ++i) s += (i ? ", " : "") + keys[i];
  if (keys.size() > max) s += " and " + std::to_string(keys.size() - max) + " more";
  return s;
}

Status MemoryStore::Set(const std::string& key, const std::string& value) {
  {
    std::lock_guard<std::mutex> l(mu_);
    data_[key] = value;
  }
  cv_.notify_all();
  return OkStatus();
}

StatusOr<std::string> MemoryStore::Get(const std::string& key) {
  ZT_RETURN_IF_ERROR(Wait({key}, timeout()));
  std::lock_guard<std::mutex> l(mu_);
  return data_.at(key);
}

StatusOr<int64_t> MemoryStore::Add(const std::string& key, int64_t delta) {
  int64_t v;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = data_.find(key);
    int64_t cur = 0;
    if (it != data_.end()) {
      try {
        cur = std::stoll(it->second);
      } catch (const std::exception&) {
        return InvalidArgument("store key '" + key + "' holds '" + it->second + "', not an integer");
      }
    }
    v = cur + delta;
    data_[key] = std::to_string(v);
  }
  cv_.notify_all();
  return v;
}

Status MemoryStore::Wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> l(mu_);
  auto missing = [&] {
    std::vector<std::string> m;
    for (const auto& k : keys)
      if (!data_.count(k)) m.push_back(k);
    return m;
  };
  bool ok = cv_.wait_for(l, timeout, [&] { return missing().empty(); });
  if (!ok) {
    return DeadlineExceeded("timed out after " + std::to_string(timeout.count()) + " ms waiting for store keys " +
                            JoinKeys(missing()));
  }
  return OkStatus();
}

StatusOr<bool> MemoryStore::Delete(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  return data_.erase(key) > 0;
}

}  // namespace zt::comm
