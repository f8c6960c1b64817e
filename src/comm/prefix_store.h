// PrefixStore: a view of another Store in which every key is "<prefix>/<key>", so sub-groups (a
// communicator per process group, a restart generation) share one store without key clashes.
// Invariant: the view touches only keys under "<prefix>/" of the underlying store; its timeout
// starts as the underlying store's and bounds its Get and Wait.
#pragma once

#include <memory>
#include <string>

#include "comm/store.h"

namespace zt::comm {

class PrefixStore final : public Store {
 public:
  // Shares ownership of `base`.
  PrefixStore(std::shared_ptr<Store> base, std::string prefix);
  // Borrows `base`, which must outlive this view.
  PrefixStore(Store& base, std::string prefix);

  Status Set(const std::string& key, const std::string& value) override;
  StatusOr<std::string> Get(const std::string& key) override;
  StatusOr<int64_t> Add(const std::string& key, int64_t delta) override;
  Status Wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) override;
  StatusOr<bool> Delete(const std::string& key) override;
  using Store::Wait;

  const std::string& prefix() const { return prefix_; }

 private:
  std::string Key(const std::string& key) const { return prefix_ + "/" + key; }

  std::shared_ptr<Store> owned_;
  Store* base_;
  std::string prefix_;
};

}  // namespace zt::comm
