// socket: the few POSIX TCP helpers the store (and other comm code) needs: an owning fd, "host:port"
// parsing, listen, a bounded connect, and send/recv of exact byte counts before a deadline.
// Invariant: every socket is close-on-exec and non-blocking, and no call here blocks past the
// deadline it is given; errors are Status values that name the peer ("host:port").
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "core/status.h"

namespace zt::comm {

using SteadyClock = std::chrono::steady_clock;

// Owns one file descriptor; closes it on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.release();
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset();

 private:
  int fd_ = -1;
};

struct HostPort {
  std::string host;
  int port = 0;
};

// "host:port" or "[ipv6]:port" with 1 <= port <= 65535. Errors say what was expected.
StatusOr<HostPort> ParseHostPort(const std::string& s);
// The inverse (brackets an IPv6 literal).
std::string FormatHostPort(const std::string& host, int port);

// A listening socket bound to host:port (port 0: an ephemeral one), non-blocking.
StatusOr<Fd> ListenTcp(const std::string& host, int port, int backlog);
// The local port a bound socket got.
StatusOr<int> LocalPort(int fd);
// "ip:port" of the peer, for log lines ("?" when unknown).
std::string PeerName(int fd);

// One connection attempt to host:port that gives up at `deadline`. A refused, unreachable or
// timed-out attempt is Unavailable (worth retrying); an unknown host is InvalidArgument.
StatusOr<Fd> ConnectTcp(const std::string& host, int port, SteadyClock::time_point deadline);

// Sends/receives exactly n bytes. A closed or reset connection is Unavailable, the deadline
// passing is DeadlineExceeded; `*moved` (if given) counts the bytes transferred before either.
// `peer` names the other end in messages.
Status SendAll(int fd, const void* data, size_t n, SteadyClock::time_point deadline, const std::string& peer);
Status RecvAll(int fd, void* data, size_t n, SteadyClock::time_point deadline, const std::string& peer,
               size_t* moved = nullptr);

}  // namespace zt::comm
