// TCP store: the job's rendezvous Store over TCP. TcpStoreServer (hosted by the launcher agent, or
// by rank 0) keeps the table and serves every client from one epoll thread; ConnectTcpStore gives a
// client Store. The protocol, limits and timeout policy are in docs/comm.md.
// Invariants: the server serves only clients that present the job's token (compared in constant
// time); nothing a client sends can crash it or make it buffer more than one capped frame (keys
// <= 64 KiB, values <= 64 MiB); a slow or silent client never stalls the others. Client calls
// return within their timeout (plus a short grace to cancel a wait): DeadlineExceeded naming the
// missing keys, Unavailable naming host:port when the server is gone, never a hang.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "comm/store.h"
#include "comm/store_wire.h"
#include "core/settings.h"
#include "core/status.h"

namespace zt::comm {

constexpr size_t kMaxStoreKeyBytes = wire::kMaxKeyBytes;
constexpr size_t kMaxStoreValueBytes = wire::kMaxValueBytes;

class TcpStoreServer {
 public:
  // Listens on bind_host:port (port 0: an ephemeral port; see port()) and starts serving. Callers
  // pass settings ZT_STORE_BIND (127.0.0.1 unless the job spans nodes). `token` must be non-empty
  // (GenerateToken()).
  static StatusOr<std::unique_ptr<TcpStoreServer>> Start(const std::string& bind_host, int port,
                                                         const std::string& token);
  ~TcpStoreServer();
  TcpStoreServer(const TcpStoreServer&) = delete;
  TcpStoreServer& operator=(const TcpStoreServer&) = delete;

  int port() const;
  // "bind_host:port".
  std::string address() const;
  // Closes every connection (their clients get Unavailable) and the listening socket. Idempotent.
  void Stop();

  class Impl;

 private:
  explicit TcpStoreServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A client of the store at host:port. Retries connecting until `timeout` (the server may start
// later), then DeadlineExceeded naming host:port; a wrong token is PermissionDenied at once. The
// store's timeout() is `timeout`. Thread-safe: concurrent calls use separate connections.
StatusOr<std::unique_ptr<Store>> ConnectTcpStore(const std::string& host, int port, const std::string& token,
                                                 std::chrono::milliseconds timeout = settings::CommTimeout());
// The same for "host:port" (e.g. settings ZT_STORE); a malformed address is InvalidArgument.
StatusOr<std::unique_ptr<Store>> ConnectTcpStore(const std::string& host_port, const std::string& token,
                                                 std::chrono::milliseconds timeout = settings::CommTimeout());

// A fresh job token: 128 random bits from /dev/urandom, as 32 lowercase hex digits.
StatusOr<std::string> GenerateToken();

}  // namespace zt::comm
