// GlooStoreAdapter: gloo's rendezvous store interface over a ztrain Store (see the header).
#include "comm/gloo_store_adapter.h"

namespace zt::comm {

std::string HexEncode(const std::vector<char>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (char c : bytes) {
    auto u = static_cast<unsigned char>(c);
    s.push_back(kDigits[u >> 4]);
    s.push_back(kDigits[u & 15]);
  }
  return s;
}

StatusOr<std::vector<char>> HexDecode(const std::string& hex, const std::string& what) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) {
    return InvalidArgument(what + " holds " + std::to_string(hex.size()) +
                           " characters, not hex-encoded bytes; another program may be using the same store keys");
  }
  std::vector<char> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = digit(hex[2 * i]), lo = digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return InvalidArgument(what + " holds a non-hex character at offset " + std::to_string(2 * i) +
                             "; another program may be using the same store keys");
    }
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

void GlooStoreAdapter::set(const std::string& key, const std::vector<char>& data) {
  Status s = store_.Set(Full(key), HexEncode(data));
  if (!s.ok()) throw GlooStoreError(s.WithContext("publishing gloo key '" + Full(key) + "'"));
}

std::vector<char> GlooStoreAdapter::get(const std::string& key) {
  last_key_ = key;
  // Wait with our timeout first: Store::Get waits with the store's own, which may differ.
  Status s = store_.Wait({Full(key)}, timeout_);
  if (!s.ok()) throw GlooStoreError(s);
  StatusOr<std::string> v = store_.Get(Full(key));
  if (!v.ok()) throw GlooStoreError(v.status());
  StatusOr<std::vector<char>> bytes = HexDecode(*v, "store key '" + Full(key) + "'");
  if (!bytes.ok()) throw GlooStoreError(bytes.status());
  return std::move(bytes).value();
}

void GlooStoreAdapter::wait(const std::vector<std::string>& keys) { wait(keys, timeout_); }

void GlooStoreAdapter::wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) {
  // gloo passes its own default (30 s) or the context's; the communicator's timeout rules.
  (void)timeout;
  if (!keys.empty()) last_key_ = keys.back();
  std::vector<std::string> full;
  full.reserve(keys.size());
  for (const auto& k : keys) full.push_back(Full(k));
  Status s = store_.Wait(full, timeout_);
  if (!s.ok()) throw GlooStoreError(s);
}

}  // namespace zt::comm
