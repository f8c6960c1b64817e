// TcpStoreServer: one thread runs an epoll loop over the listening socket, a wake-up eventfd and
// every client connection (all non-blocking, level-triggered). Each connection keeps an input
// buffer (at most one capped frame plus one read chunk), an output buffer, and at most one parked
// request (a Get or Wait whose keys do not all exist yet). A parked request is registered under
// its first missing key; when that key appears it is re-checked and either answered or moved to
// the next missing key. While a connection has unsent output its input is not read, so a client
// that does not read its replies only holds back itself.
// Invariant: a connection that breaks the protocol (bad magic, oversized or malformed frame,
// a second request while one is parked) is closed; nothing it sent can stop the loop.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>
#include <unordered_map>
#include <vector>

#include "comm/socket.h"
#include "comm/store_util.h"
#include "comm/store_wire.h"
#include "comm/tcp_store.h"
#include "core/logging.h"

namespace zt::comm {

using wire::FrameReader;
using wire::FrameWriter;
using wire::Op;

namespace {

constexpr uint64_t kListenId = 0;
constexpr uint64_t kWakeId = 1;
constexpr size_t kReadChunk = size_t{256} << 10;
constexpr auto kHelloTimeout = std::chrono::seconds(10);  // an unauthenticated connection's lifetime
constexpr int kMaxEvents = 128;

enum class Parked { kNone, kGet, kWait };

struct Conn {
  uint64_t id = 0;
  Fd fd;
  std::string peer;
  bool authed = false;
  SteadyClock::time_point hello_deadline;
  std::string in;  // unprocessed bytes start at in_pos
  size_t in_pos = 0;
  std::string out;  // unsent bytes start at out_pos
  size_t out_pos = 0;
  bool writing = false;  // epoll interest is EPOLLOUT (else EPOLLIN)
  bool dead = false;
  bool close_after_flush = false;
  Parked parked = Parked::kNone;
  std::vector<std::string> keys;  // of the parked request
  std::string parked_on;          // the missing key it is registered under

  bool OutputPending() const { return out_pos < out.size(); }
};

}  // namespace

class TcpStoreServer::Impl {
 public:
  Impl(Fd listen, Fd epoll, Fd wake, std::string token, std::string host, int port)
      : listen_(std::move(listen)), epoll_(std::move(epoll)), wake_(std::move(wake)), token_(std::move(token)),
        host_(std::move(host)), port_(port) {}
  ~Impl() { Stop(); }

  void StartThread() { thread_ = std::thread([this] { Loop(); }); }
  void Stop() {
    if (!thread_.joinable()) return;
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_.get(), &one, sizeof(one));
    (void)ignored;
    thread_.join();
    conns_.clear();  // closes every client socket
    waiters_.clear();
    listen_.reset();
  }
  int port() const { return port_; }
  const std::string& host() const { return host_; }

 private:
  void Loop();
  void Accept();
  void OnEvent(Conn& c, uint32_t events);
  void ReadSome(Conn& c);
  void WriteSome(Conn& c);
  void ProcessFrames(Conn& c);
  bool Handle(Conn& c, std::string_view body);  // false: protocol violation
  bool HandleHello(Conn& c, FrameReader& r);
  void Reply(Conn& c, std::string frame);
  void Park(Conn& c, Parked kind, std::vector<std::string> keys);
  void Unpark(Conn& c);
  void KeyAppeared(const std::string& key);
  bool Exists(const std::string& k) const { return data_.count(k) > 0; }
  std::vector<std::string> Missing(const std::vector<std::string>& keys) const;
  void Settle();
  void Close(uint64_t id);
  void ExpireHellos();
  void SetInterest(Conn& c, bool writing);

  Fd listen_, epoll_, wake_;
  std::string token_;
  std::string host_;
  int port_;
  std::thread thread_;

  uint64_t next_id_ = 2;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::unordered_map<std::string, std::string> data_;
  std::unordered_map<std::string, std::vector<uint64_t>> waiters_;  // key -> parked connections
  std::vector<uint64_t> touched_;  // connections whose state changed in this round
  std::vector<char> chunk_ = std::vector<char>(kReadChunk);
  bool accept_paused_ = false;
  SteadyClock::time_point accept_resume_;
  SteadyClock::time_point next_hello_sweep_;
};

void TcpStoreServer::Impl::Loop() {
  epoll_event events[kMaxEvents];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, kMaxEvents, 200);
    if (n < 0 && errno != EINTR) {
      ZT_LOG(ERROR) << "store server " << FormatHostPort(host_, port_) << ": epoll_wait failed: "
                    << std::strerror(errno) << "; the store stops serving";
      return;
    }
    for (int i = 0; i < n; ++i) {
      uint64_t id = events[i].data.u64;
      if (id == kWakeId) return;
      if (id == kListenId) {
        Accept();
        continue;
      }
      auto it = conns_.find(id);
      if (it == conns_.end()) continue;
      OnEvent(*it->second, events[i].events);
      touched_.push_back(id);
    }
    Settle();
    auto now = SteadyClock::now();
    if (accept_paused_ && now >= accept_resume_) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = kListenId;
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, listen_.get(), &ev);
      accept_paused_ = false;
    }
    if (now >= next_hello_sweep_) {
      ExpireHellos();
      next_hello_sweep_ = now + std::chrono::seconds(1);
    }
  }
}

void TcpStoreServer::Impl::Accept() {
  for (;;) {
    int fd = ::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: stop accepting for a moment instead of spinning on the listener.
        ZT_LOG(WARNING) << "store server " << FormatHostPort(host_, port_) << ": cannot accept a client: "
                        << std::strerror(errno) << " (" << conns_.size() << " open); raise `ulimit -n`";
        epoll_event ev{};
        ev.data.u64 = kListenId;
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, listen_.get(), &ev);
        accept_paused_ = true;
        accept_resume_ = SteadyClock::now() + std::chrono::milliseconds(100);
      }
      return;  // EAGAIN and anything else: wait for the next readiness
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto c = std::make_unique<Conn>();
    c->id = next_id_++;
    c->fd = Fd(fd);
    c->peer = PeerName(fd);
    c->hello_deadline = SteadyClock::now() + kHelloTimeout;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = c->id;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) continue;  // c closes fd
    conns_.emplace(c->id, std::move(c));
  }
}

void TcpStoreServer::Impl::OnEvent(Conn& c, uint32_t events) {
  if (events & (EPOLLERR | EPOLLHUP)) {
    // Drain what is readable first would only serve a client that is gone; close it.
    c.dead = true;
    return;
  }
  if ((events & EPOLLOUT) && c.writing) WriteSome(c);
  if ((events & EPOLLIN) && !c.writing) ReadSome(c);
}

void TcpStoreServer::Impl::ReadSome(Conn& c) {
  ssize_t r = ::recv(c.fd.get(), chunk_.data(), chunk_.size(), 0);
  if (r == 0) {
    c.dead = true;  // the client closed its end
    return;
  }
  if (r < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) c.dead = true;
    return;
  }
  c.in.append(chunk_.data(), static_cast<size_t>(r));
  ProcessFrames(c);
}

void TcpStoreServer::Impl::WriteSome(Conn& c) {
  while (c.OutputPending()) {
    ssize_t w = ::send(c.fd.get(), c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
    if (w > 0) {
      c.out_pos += static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    c.dead = true;
    return;
  }
  c.out.clear();
  c.out_pos = 0;
}

void TcpStoreServer::Impl::ProcessFrames(Conn& c) {
  while (!c.dead && !c.close_after_flush && !c.OutputPending()) {
    size_t avail = c.in.size() - c.in_pos;
    if (avail < 4) break;
    uint32_t len = wire::LoadU32(c.in.data() + c.in_pos);
    size_t cap = c.authed ? wire::kMaxFrameBytes : wire::kMaxHelloFrameBytes;
    if (len == 0 || len > cap) {
      ZT_LOG(WARNING) << "store server: closing the connection from " << c.peer << ": it announced a "
                      << len << "-byte message (limit " << cap << (c.authed ? "" : " before the token") << ")";
      c.dead = true;
      return;
    }
    if (avail < 4 + size_t{len}) break;
    std::string_view body(c.in.data() + c.in_pos + 4, len);
    c.in_pos += 4 + size_t{len};
    if (!Handle(c, body)) {
      if (!c.close_after_flush) {
        ZT_LOG(WARNING) << "store server: closing the connection from " << c.peer << ": malformed message";
        c.dead = true;
      }
      return;
    }
  }
  if (c.in_pos == c.in.size()) {
    c.in.clear();
    c.in_pos = 0;
  } else if (c.in_pos > (size_t{1} << 20)) {
    c.in.erase(0, c.in_pos);
    c.in_pos = 0;
  }
}

bool TcpStoreServer::Impl::HandleHello(Conn& c, FrameReader& r) {
  uint32_t magic = 0, version = 0;
  std::string token;
  if (!r.U32(&magic) || magic != wire::kMagic) return false;  // not a ztrain store client
  if (!r.U32(&version) || !r.Str(&token, wire::kMaxTokenBytes) || !r.AtEnd()) return false;
  if (version != wire::kVersion) {
    Reply(c, FrameWriter(Op::kError)
                 .U8(static_cast<uint8_t>(StatusCode::kFailedPrecondition))
                 .Str("the store speaks protocol version " + std::to_string(wire::kVersion) + ", this client " +
                      std::to_string(version) + "; run the same ztrain build everywhere")
                 .Finish());
    c.close_after_flush = true;
    return false;
  }
  if (!wire::TokensEqual(token, token_)) {
    ZT_LOG(WARNING) << "store server " << FormatHostPort(host_, port_) << ": refused a client from " << c.peer
                    << ": wrong job token";
    Reply(c, FrameWriter(Op::kError)
                 .U8(static_cast<uint8_t>(StatusCode::kPermissionDenied))
                 .Str("the store refused this client: wrong job token")
                 .Finish());
    c.close_after_flush = true;
    return false;
  }
  c.authed = true;
  Reply(c, FrameWriter(Op::kOk).Finish());
  return true;
}

bool TcpStoreServer::Impl::Handle(Conn& c, std::string_view body) {
  FrameReader r(body);
  uint8_t op_byte = 0;
  if (!r.U8(&op_byte)) return false;
  Op op = static_cast<Op>(op_byte);
  if (!c.authed) return op == Op::kHello && HandleHello(c, r);
  if (c.parked != Parked::kNone && op != Op::kCancel) return false;  // one request at a time
  std::string key;
  switch (op) {
    case Op::kSet: {
      std::string value;
      if (!r.Str(&key, wire::kMaxKeyBytes) || !r.Str(&value, wire::kMaxValueBytes) || !r.AtEnd()) return false;
      data_[key] = std::move(value);
      Reply(c, FrameWriter(Op::kOk).Finish());
      KeyAppeared(key);
      return true;
    }
    case Op::kGet: {
      if (!r.Str(&key, wire::kMaxKeyBytes) || !r.AtEnd()) return false;
      auto it = data_.find(key);
      if (it != data_.end()) Reply(c, FrameWriter(Op::kValue).Str(it->second).Finish());
      else Park(c, Parked::kGet, {key});
      return true;
    }
    case Op::kAdd: {
      int64_t delta = 0;
      if (!r.Str(&key, wire::kMaxKeyBytes) || !r.I64(&delta) || !r.AtEnd()) return false;
      auto it = data_.find(key);
      StatusOr<int64_t> v = AddToStoredInt(key, it == data_.end() ? nullptr : &it->second, delta);
      if (!v.ok()) {
        Reply(c, FrameWriter(Op::kError)
                     .U8(static_cast<uint8_t>(v.status().code()))
                     .Str(v.status().message())
                     .Finish());
        return true;
      }
      data_[key] = std::to_string(*v);
      Reply(c, FrameWriter(Op::kInt).I64(*v).Finish());
      KeyAppeared(key);
      return true;
    }
    case Op::kWait: {
      uint32_t n = 0;
      if (!r.U32(&n) || n > r.left() / 4) return false;  // each key takes at least 4 bytes
      std::vector<std::string> keys(n);
      for (auto& k : keys)
        if (!r.Str(&k, wire::kMaxKeyBytes)) return false;
      if (!r.AtEnd()) return false;
      if (Missing(keys).empty()) Reply(c, FrameWriter(Op::kOk).Finish());
      else Park(c, Parked::kWait, std::move(keys));
      return true;
    }
    case Op::kDelete: {
      if (!r.Str(&key, wire::kMaxKeyBytes) || !r.AtEnd()) return false;
      bool existed = data_.erase(key) > 0;
      Reply(c, FrameWriter(Op::kBool).U8(existed ? 1 : 0).Finish());
      return true;
    }
    case Op::kCancel: {
      if (!r.AtEnd()) return false;
      if (c.parked != Parked::kNone) {
        FrameWriter w(Op::kTimedOut);
        std::vector<std::string> missing = Missing(c.keys);
        w.U32(static_cast<uint32_t>(missing.size()));
        for (const auto& k : missing) w.Str(k);
        Unpark(c);
        Reply(c, w.Finish());
      }
      Reply(c, FrameWriter(Op::kOk).Finish());
      return true;
    }
    default:
      return false;
  }
}

std::vector<std::string> TcpStoreServer::Impl::Missing(const std::vector<std::string>& keys) const {
  std::vector<std::string> m;
  for (const auto& k : keys)
    if (!Exists(k)) m.push_back(k);
  return m;
}

void TcpStoreServer::Impl::Reply(Conn& c, std::string frame) {
  if (c.out_pos == c.out.size()) {
    c.out = std::move(frame);
    c.out_pos = 0;
  } else {
    c.out += frame;
  }
  WriteSome(c);  // most replies leave at once; the rest wait for EPOLLOUT
  touched_.push_back(c.id);
}

void TcpStoreServer::Impl::Park(Conn& c, Parked kind, std::vector<std::string> keys) {
  c.parked = kind;
  c.keys = std::move(keys);
  for (const auto& k : c.keys) {
    if (!Exists(k)) {
      c.parked_on = k;
      waiters_[k].push_back(c.id);
      return;
    }
  }
  ZT_CHECK(false) << "parked a store request whose keys all exist";
}

void TcpStoreServer::Impl::Unpark(Conn& c) {
  if (c.parked == Parked::kNone) return;
  auto it = waiters_.find(c.parked_on);
  if (it != waiters_.end()) {
    std::erase(it->second, c.id);
    if (it->second.empty()) waiters_.erase(it);
  }
  c.parked = Parked::kNone;
  c.keys.clear();
  c.parked_on.clear();
}

void TcpStoreServer::Impl::KeyAppeared(const std::string& key) {
  auto it = waiters_.find(key);
  if (it == waiters_.end()) return;
  std::vector<uint64_t> ids = std::move(it->second);
  waiters_.erase(it);
  for (uint64_t id : ids) {
    auto ct = conns_.find(id);
    if (ct == conns_.end()) continue;
    Conn& w = *ct->second;
    if (w.parked == Parked::kNone || w.parked_on != key) continue;
    w.parked_on.clear();
    bool all_there = true;
    for (const auto& k : w.keys) {
      if (!Exists(k)) {  // wait on the next missing key
        w.parked_on = k;
        waiters_[k].push_back(id);
        all_there = false;
        break;
      }
    }
    if (!all_there) continue;
    std::string frame = w.parked == Parked::kGet ? FrameWriter(Op::kValue).Str(data_.at(w.keys[0])).Finish()
                                                 : FrameWriter(Op::kOk).Finish();
    w.parked = Parked::kNone;
    w.keys.clear();
    Reply(w, std::move(frame));
  }
}

void TcpStoreServer::Impl::SetInterest(Conn& c, bool writing) {
  if (c.writing == writing) return;
  epoll_event ev{};
  ev.events = writing ? EPOLLOUT : EPOLLIN;
  ev.data.u64 = c.id;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev) != 0) c.dead = true;
  c.writing = writing;
}

// Brings every touched connection to a resting state: closed if dead (or refused and flushed),
// otherwise watching for writes while output is pending, or for reads (after processing any frames
// already buffered) when it is not. Processing can touch more connections; repeat until none.
void TcpStoreServer::Impl::Settle() {
  while (!touched_.empty()) {
    std::vector<uint64_t> ids;
    ids.swap(touched_);
    for (uint64_t id : ids) {
      auto it = conns_.find(id);
      if (it == conns_.end()) continue;
      Conn& c = *it->second;
      if (!c.dead && !c.OutputPending()) {
        if (c.close_after_flush) c.dead = true;
        else if (c.in_pos < c.in.size()) ProcessFrames(c);
      }
      if (!c.dead) SetInterest(c, c.OutputPending());
      if (c.dead) Close(id);
    }
  }
}

void TcpStoreServer::Impl::Close(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Unpark(*it->second);
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second->fd.get(), nullptr);
  conns_.erase(it);  // closes the socket
}

void TcpStoreServer::Impl::ExpireHellos() {
  auto now = SteadyClock::now();
  std::vector<uint64_t> late;
  for (const auto& [id, c] : conns_)
    if (!c->authed && now >= c->hello_deadline) late.push_back(id);
  for (uint64_t id : late) {
    ZT_LOG(WARNING) << "store server: closing the connection from " << conns_.at(id)->peer
                    << ": it did not present a job token within " << kHelloTimeout.count() << " s";
    Close(id);
  }
}

TcpStoreServer::TcpStoreServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TcpStoreServer::~TcpStoreServer() { Stop(); }
int TcpStoreServer::port() const { return impl_->port(); }
std::string TcpStoreServer::address() const { return FormatHostPort(impl_->host(), impl_->port()); }
void TcpStoreServer::Stop() { impl_->Stop(); }

StatusOr<std::unique_ptr<TcpStoreServer>> TcpStoreServer::Start(const std::string& bind_host, int port,
                                                               const std::string& token) {
  if (token.empty())
    return InvalidArgument("the TCP store needs a non-empty job token (GenerateToken(), passed to workers as "
                           "ZT_STORE_TOKEN)");
  if (token.size() > wire::kMaxTokenBytes)
    return InvalidArgument("the store's job token is " + std::to_string(token.size()) + " bytes; the limit is " +
                           std::to_string(wire::kMaxTokenBytes));
  ZT_ASSIGN_OR_RETURN(Fd listen, ListenTcp(bind_host, port, SOMAXCONN));
  ZT_ASSIGN_OR_RETURN(int bound_port, LocalPort(listen.get()));
  Fd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep.valid()) return Internal(std::string("epoll_create1 failed: ") + std::strerror(errno));
  Fd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return Internal(std::string("eventfd failed: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenId;
  if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, listen.get(), &ev) != 0)
    return Internal(std::string("epoll_ctl failed: ") + std::strerror(errno));
  ev.data.u64 = kWakeId;
  if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, wake.get(), &ev) != 0)
    return Internal(std::string("epoll_ctl failed: ") + std::strerror(errno));
  auto impl = std::make_unique<Impl>(std::move(listen), std::move(ep), std::move(wake), token, bind_host, bound_port);
  impl->StartThread();
  ZT_LOG(DEBUG) << "store server listening on " << FormatHostPort(bind_host, bound_port);
  return std::unique_ptr<TcpStoreServer>(new TcpStoreServer(std::move(impl)));
}

}  // namespace zt::comm
