// socket: POSIX TCP helpers (see socket.h). All sockets are SOCK_NONBLOCK | SOCK_CLOEXEC; waits use
// poll() with the time left before the caller's deadline.
#include "comm/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace zt::comm {
namespace {

// Milliseconds left before `deadline`, rounded up, at least 0.
int MillisLeft(SteadyClock::time_point deadline) {
  auto left = deadline - SteadyClock::now();
  if (left <= SteadyClock::duration::zero()) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return ms > 1000000 ? 1000000 : static_cast<int>(ms);
}

// Waits for `events` on fd until the deadline. Returns false when the deadline passed first.
bool PollUntil(int fd, short events, SteadyClock::time_point deadline) {
  for (;;) {
    int ms = MillisLeft(deadline);
    if (ms == 0) return false;
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, ms);
    if (r > 0) return true;  // readiness or an error condition: the next call reports which
    if (r < 0 && errno != EINTR) return true;
  }
}

struct AddrInfoList {
  addrinfo* head = nullptr;
  ~AddrInfoList() {
    if (head) ::freeaddrinfo(head);
  }
};

bool IsConnectionLost(int err) { return err == EPIPE || err == ECONNRESET || err == ECONNABORTED || err == ENOTCONN; }

}  // namespace

void Fd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

StatusOr<HostPort> ParseHostPort(const std::string& s) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("store address '" + s + "' is not host:port (" + why +
                           "); write it like 127.0.0.1:29500, node0:29500 or [::1]:29500");
  };
  HostPort hp;
  std::string port;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos) return bad("'[' without ']'");
    hp.host = s.substr(1, close - 1);
    if (close + 1 >= s.size() || s[close + 1] != ':') return bad("no ':port' after ']'");
    port = s.substr(close + 2);
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string::npos) return bad("no ':port'");
    hp.host = s.substr(0, colon);
    if (hp.host.find(':') != std::string::npos) return bad("an IPv6 address must be written in brackets");
    port = s.substr(colon + 1);
  }
  if (hp.host.empty()) return bad("empty host");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return bad("port '" + port + "' is not a number");
  hp.port = std::stoi(port);
  if (hp.port < 1 || hp.port > 65535) return bad("port " + port + " is outside 1..65535");
  return hp;
}

std::string FormatHostPort(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

StatusOr<Fd> ListenTcp(const std::string& host, int port, int backlog) {
  std::string where = FormatHostPort(host, port);
  if (host.empty()) return InvalidArgument("cannot listen on '" + where + "': empty bind address (e.g. 127.0.0.1)");
  if (port < 0 || port > 65535) return InvalidArgument("cannot listen on " + where + ": port outside 0..65535");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  AddrInfoList list;
  int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list.head);
  if (rc != 0) return InvalidArgument("cannot listen on " + where + ": " + ::gai_strerror(rc));
  std::string last = "no address";
  for (addrinfo* a = list.head; a; a = a->ai_next) {
    Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd.valid()) {
      last = std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd.get(), backlog) != 0) {
      last = std::strerror(errno);
      continue;
    }
    return fd;
  }
  return Unavailable("cannot listen on " + where + ": " + last +
                     " (is the port taken? pass port 0 for a free one, or another bind address)");
}

StatusOr<int> LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return Internal(std::string("getsockname failed: ") + std::strerror(errno));
  if (ss.ss_family == AF_INET) return static_cast<int>(ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port));
  if (ss.ss_family == AF_INET6) return static_cast<int>(ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port));
  return Internal("getsockname returned an address that is neither IPv4 nor IPv6");
}

std::string PeerName(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    return FormatHostPort(host, ntohs(in->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* in = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof(host));
    return FormatHostPort(host, ntohs(in->sin6_port));
  }
  return "?";
}

StatusOr<Fd> ConnectTcp(const std::string& host, int port, SteadyClock::time_point deadline) {
  std::string where = FormatHostPort(host, port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  AddrInfoList list;
  int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list.head);
  if (rc == EAI_AGAIN) return Unavailable("cannot resolve " + where + " yet: " + ::gai_strerror(rc));
  if (rc != 0) return InvalidArgument("cannot resolve store host '" + host + "': " + ::gai_strerror(rc));
  std::string last = "no address";
  for (addrinfo* a = list.head; a; a = a->ai_next) {
    Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd.valid()) {
      last = std::strerror(errno);
      continue;
    }
    int r = ::connect(fd.get(), a->ai_addr, a->ai_addrlen);
    if (r != 0 && errno != EINPROGRESS) {
      last = std::strerror(errno);
      continue;
    }
    if (r != 0) {
      if (!PollUntil(fd.get(), POLLOUT, deadline)) {
        last = "connection attempt timed out";
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last = std::strerror(err);
        continue;
      }
    }
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
  }
  return Unavailable("cannot connect to " + where + ": " + last);
}

Status SendAll(int fd, const void* data, size_t n, SteadyClock::time_point deadline, const std::string& peer) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!PollUntil(fd, POLLOUT, deadline)) return DeadlineExceeded("sending to " + peer + " timed out");
      continue;
    }
    int err = w < 0 ? errno : EPIPE;
    if (IsConnectionLost(err)) return Unavailable("lost the connection to " + peer + " (" + std::strerror(err) + ")");
    return Unavailable("sending to " + peer + " failed: " + std::strerror(err));
  }
  return OkStatus();
}

Status RecvAll(int fd, void* data, size_t n, SteadyClock::time_point deadline, const std::string& peer,
               size_t* moved) {
  char* p = static_cast<char*>(data);
  size_t got = 0;
  if (moved) *moved = 0;
  while (got < n) {
    ssize_t r = ::recv(fd, p + got, n - got, 0);
    if (r > 0) {
      got += static_cast<size_t>(r);
      if (moved) *moved = got;
      continue;
    }
    if (r == 0) return Unavailable(peer + " closed the connection");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!PollUntil(fd, POLLIN, deadline)) return DeadlineExceeded("no answer from " + peer + " in time");
      continue;
    }
    int err = errno;
    if (IsConnectionLost(err)) return Unavailable("lost the connection to " + peer + " (" + std::strerror(err) + ")");
    return Unavailable("receiving from " + peer + " failed: " + std::strerror(err));
  }
  return OkStatus();
}

}  // namespace zt::comm
