// GlooStoreAdapter: presents a ztrain Store (under a key prefix) as gloo::rendezvous::Store, so
// gloo's full-mesh connection setup can rendezvous through the job's store. Internal to the Gloo
// communicator. Invariants: every key gloo uses lands under `prefix`; values are hex-encoded (any
// Store can hold them); every blocking call waits at most the adapter's timeout, and a store
// failure leaves gloo as a GlooStoreError carrying the Status, which the caller turns back into
// that Status (gloo code in between only unwinds).
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include <gloo/rendezvous/store.h>

#include "comm/store.h"
#include "core/status.h"

namespace zt::comm {

class GlooStoreError : public std::runtime_error {
 public:
  explicit GlooStoreError(Status s) : std::runtime_error(s.ToString()), status_(std::move(s)) {}
  const Status& status() const { return status_; }

 private:
  Status status_;
};

class GlooStoreAdapter final : public gloo::rendezvous::Store {
 public:
  GlooStoreAdapter(comm::Store& store, std::string prefix, std::chrono::milliseconds timeout)
      : store_(store), prefix_(std::move(prefix)), timeout_(timeout) {}

  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override;

  // The last key gloo asked for (un-prefixed), to say which peer a stalled setup was waiting on.
  const std::string& last_key() const { return last_key_; }

 private:
  std::string Full(const std::string& key) const { return prefix_ + key; }

  comm::Store& store_;
  std::string prefix_;
  std::chrono::milliseconds timeout_;
  std::string last_key_;
};

std::string HexEncode(const std::vector<char>& bytes);
// Fails (InvalidArgument naming `what`) on odd length or a non-hex digit.
StatusOr<std::vector<char>> HexDecode(const std::string& hex, const std::string& what);

}  // namespace zt::comm
