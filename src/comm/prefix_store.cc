// PrefixStore: prepends "<prefix>/" to every key and forwards to the underlying store.
#include "comm/prefix_store.h"

namespace zt::comm {

PrefixStore::PrefixStore(std::shared_ptr<Store> base, std::string prefix)
    : owned_(std::move(base)), base_(owned_.get()), prefix_(std::move(prefix)) {
  ZT_CHECK(base_ != nullptr) << "PrefixStore over a null store";
  timeout_ = base_->timeout();
}

PrefixStore::PrefixStore(Store& base, std::string prefix) : base_(&base), prefix_(std::move(prefix)) {
  timeout_ = base_->timeout();
}

Status PrefixStore::Set(const std::string& key, const std::string& value) { return base_->Set(Key(key), value); }

StatusOr<std::string> PrefixStore::Get(const std::string& key) {
  // Wait with this view's timeout, then read (the key exists, so the base's Get returns at once
  // unless it is deleted in between).
  ZT_RETURN_IF_ERROR(base_->Wait({Key(key)}, timeout()));
  return base_->Get(Key(key));
}

StatusOr<int64_t> PrefixStore::Add(const std::string& key, int64_t delta) { return base_->Add(Key(key), delta); }

Status PrefixStore::Wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  std::vector<std::string> full;
  full.reserve(keys.size());
  for (const auto& k : keys) full.push_back(Key(k));
  return base_->Wait(full, timeout);
}

StatusOr<bool> PrefixStore::Delete(const std::string& key) { return base_->Delete(Key(key)); }

}  // namespace zt::comm
