// TcpStore client: a pool of connections to one TcpStoreServer. A call takes an idle connection
// (or opens one, presenting the token), sends one request and reads its one reply. A Get or Wait
// is answered by the server when its keys exist; when the caller's timeout passes first, the
// client sends kCancel and reads the two replies that protocol guarantees (the request's — ok or
// the keys still missing — then the cancel's), so the connection stays usable.
// Invariant: a connection goes back to the pool only when it is in step with the server (no reply
// outstanding); any I/O error or unanswered request drops it.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "comm/memory_store.h"
#include "comm/socket.h"
#include "comm/store_util.h"
#include "comm/store_wire.h"
#include "comm/tcp_store.h"

namespace zt::comm {

using wire::FrameReader;
using wire::FrameWriter;
using wire::Op;

namespace {

using std::chrono::milliseconds;

constexpr milliseconds kCancelGrace(2000);  // for the server to answer a cancel
constexpr size_t kMaxIdleConnections = 64;

struct Reply {
  Op op = Op::kOk;
  std::string body;  // after the op byte
};

std::string Ms(milliseconds t) { return std::to_string(t.count()) + " ms"; }

class TcpStore final : public Store {
 public:
  TcpStore(std::string host, int port, std::string token, milliseconds timeout)
      : host_(std::move(host)), port_(port), token_(std::move(token)), where_(FormatHostPort(host_, port_)) {
    timeout_ = timeout;
  }

  // The first connection: retried until the deadline, since the server may not be up yet.
  Status ConnectFirst() {
    auto start = SteadyClock::now();
    auto deadline = start + timeout();
    milliseconds backoff(20);
    Status last = OkStatus();
    for (;;) {
      StatusOr<Fd> fd = Open(deadline);
      if (fd.ok()) {
        Release(std::move(*fd));
        return OkStatus();
      }
      last = fd.status();
      if (last.code() != StatusCode::kUnavailable && last.code() != StatusCode::kDeadlineExceeded) return last;
      auto now = SteadyClock::now();
      if (now >= deadline) break;
      std::this_thread::sleep_for(std::min<SteadyClock::duration>(backoff, deadline - now));
      backoff = std::min(backoff * 2, milliseconds(500));
    }
    return DeadlineExceeded("could not reach the store at " + where_ + " within " + Ms(timeout()) + " (last error: " +
                            last.message() + "); is the launcher (or rank 0) running, and is ZT_STORE right?");
  }

  Status Set(const std::string& key, const std::string& value) override {
    ZT_RETURN_IF_ERROR(CheckKey(key));
    if (value.size() > wire::kMaxValueBytes)
      return InvalidArgument("value for store key '" + key + "' is " + std::to_string(value.size()) +
                             " bytes; the TCP store's limit is " + std::to_string(wire::kMaxValueBytes));
    ZT_ASSIGN_OR_RETURN(Reply r, Call(FrameWriter(Op::kSet).Str(key).Str(value).Finish(), "set '" + key + "'"));
    return Expect(r, Op::kOk, "set '" + key + "'");
  }

  StatusOr<std::string> Get(const std::string& key) override {
    ZT_RETURN_IF_ERROR(CheckKey(key));
    ZT_ASSIGN_OR_RETURN(Reply r, WaitingCall(FrameWriter(Op::kGet).Str(key).Finish(), {key}, timeout()));
    if (r.op == Op::kTimedOut) return TimedOut(r, {key}, timeout());
    ZT_RETURN_IF_ERROR(Expect(r, Op::kValue, "get '" + key + "'"));
    FrameReader rd(r.body);
    std::string value;
    if (!rd.Str(&value, wire::kMaxValueBytes) || !rd.AtEnd()) return Garbled("get '" + key + "'");
    return value;
  }

  StatusOr<int64_t> Add(const std::string& key, int64_t delta) override {
    ZT_RETURN_IF_ERROR(CheckKey(key));
    ZT_ASSIGN_OR_RETURN(Reply r, Call(FrameWriter(Op::kAdd).Str(key).I64(delta).Finish(), "add to '" + key + "'"));
    ZT_RETURN_IF_ERROR(Expect(r, Op::kInt, "add to '" + key + "'"));
    FrameReader rd(r.body);
    int64_t v = 0;
    if (!rd.I64(&v) || !rd.AtEnd()) return Garbled("add to '" + key + "'");
    return v;
  }

  Status Wait(const std::vector<std::string>& keys, milliseconds timeout) override {
    FrameWriter w(Op::kWait);
    w.U32(static_cast<uint32_t>(keys.size()));
    size_t bytes = 0;
    for (const auto& k : keys) {
      ZT_RETURN_IF_ERROR(CheckKey(k));
      bytes += 4 + k.size();
      w.Str(k);
    }
    if (bytes > wire::kMaxFrameBytes - 16)
      return InvalidArgument("a store wait for " + std::to_string(keys.size()) + " keys (" + std::to_string(bytes) +
                             " bytes) is over the TCP store's message limit; wait for fewer keys at a time");
    ZT_ASSIGN_OR_RETURN(Reply r, WaitingCall(w.Finish(), keys, timeout));
    if (r.op == Op::kTimedOut) return TimedOut(r, keys, timeout);
    return Expect(r, Op::kOk, "wait");
  }
  using Store::Wait;

  StatusOr<bool> Delete(const std::string& key) override {
    ZT_RETURN_IF_ERROR(CheckKey(key));
    ZT_ASSIGN_OR_RETURN(Reply r, Call(FrameWriter(Op::kDelete).Str(key).Finish(), "delete '" + key + "'"));
    ZT_RETURN_IF_ERROR(Expect(r, Op::kBool, "delete '" + key + "'"));
    FrameReader rd(r.body);
    uint8_t b = 0;
    if (!rd.U8(&b) || !rd.AtEnd() || b > 1) return Garbled("delete '" + key + "'");
    return b == 1;
  }

 private:
  Status CheckKey(const std::string& key) const {
    if (key.size() > wire::kMaxKeyBytes)
      return InvalidArgument("store key of " + std::to_string(key.size()) + " bytes ('" + key.substr(0, 40) +
                             "...') is over the TCP store's limit of " + std::to_string(wire::kMaxKeyBytes));
    return OkStatus();
  }

  Status Garbled(const std::string& what) const {
    return Unavailable("the store at " + where_ + " sent a malformed answer to " + what +
                       " (is ZT_STORE a ztrain store of the same build?)");
  }

  // Maps a reply to OK or the error it carries.
  Status Expect(const Reply& r, Op want, const std::string& what) const {
    if (r.op == want) return OkStatus();
    if (r.op == Op::kError) {
      FrameReader rd(r.body);
      uint8_t code = 0;
      std::string msg;
      if (!rd.U8(&code) || !rd.Str(&msg, wire::kMaxFrameBytes) || code == 0 ||
          code > static_cast<uint8_t>(StatusCode::kInternal))
        return Garbled(what);
      return Status(static_cast<StatusCode>(code), msg);
    }
    return Garbled(what);
  }

  Status TimedOut(const Reply& r, const std::vector<std::string>& keys, milliseconds timeout) const {
    FrameReader rd(r.body);
    uint32_t n = 0;
    std::vector<std::string> missing;
    if (rd.U32(&n) && n <= keys.size()) {
      missing.resize(n);
      for (auto& k : missing)
        if (!rd.Str(&k, wire::kMaxKeyBytes)) return Garbled("a timed-out wait");
    }
    if (missing.empty()) missing = keys;
    return WaitTimedOut(timeout, missing, " (store at " + where_ + ")");
  }

  // Opens one connection and presents the token.
  StatusOr<Fd> Open(SteadyClock::time_point deadline) {
    ZT_ASSIGN_OR_RETURN(Fd fd, ConnectTcp(host_, port_, deadline));
    std::string hello = FrameWriter(Op::kHello).U32(wire::kMagic).U32(wire::kVersion).Str(token_).Finish();
    ZT_RETURN_IF_ERROR(SendAll(fd.get(), hello.data(), hello.size(), deadline, "the store at " + where_));
    ZT_ASSIGN_OR_RETURN(Reply r, ReadReply(fd.get(), deadline));
    if (r.op == Op::kOk) return fd;
    Status s = Expect(r, Op::kOk, "the token");
    if (s.code() == StatusCode::kPermissionDenied)
      return PermissionDenied("the store refused this client: wrong job token (the store at " + where_ +
                              " serves only clients with its job's token; check that ZT_STORE_TOKEN matches the "
                              "launcher's)");
    return s;
  }

  // One reply frame. Only the wait for its first byte is bounded by `deadline` (DeadlineExceeded,
  // the connection still in step); once the server has begun answering, the rest gets at least
  // kCancelGrace more, and failing then is Unavailable (the connection is out of step).
  StatusOr<Reply> ReadReply(int fd, SteadyClock::time_point deadline) const {
    std::string peer = "the store at " + where_;
    char head[4];
    size_t moved = 0;
    Status s = RecvAll(fd, head, 1, deadline, peer, &moved);
    if (!s.ok()) return s;
    auto rest = std::max(deadline, SteadyClock::now() + kCancelGrace);
    s = RecvAll(fd, head + 1, 3, rest, peer);
    uint32_t len = s.ok() ? wire::LoadU32(head) : 0;
    if (s.ok() && (len == 0 || len > wire::kMaxFrameBytes))
      return Unavailable(peer + " sent a " + std::to_string(len) + "-byte message; it is not a ztrain store");
    std::string body;
    if (s.ok()) {
      body.resize(len);
      s = RecvAll(fd, body.data(), len, rest, peer);
    }
    if (!s.ok()) return Unavailable(peer + " cut its answer short: " + s.message());
    Reply r;
    r.op = static_cast<Op>(static_cast<uint8_t>(body[0]));
    r.body = body.substr(1);
    return r;
  }

  StatusOr<Fd> Acquire(SteadyClock::time_point deadline) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!idle_.empty()) {
        Fd fd = std::move(idle_.back());
        idle_.pop_back();
        return fd;
      }
    }
    StatusOr<Fd> fd = Open(deadline);
    if (!fd.ok() && fd.status().code() == StatusCode::kUnavailable)
      return Unavailable("the store server at " + where_ + " is unreachable (" + fd.status().message() +
                         "); did the launcher (or rank 0) exit?");
    return fd;
  }

  void Release(Fd fd) {
    std::lock_guard<std::mutex> l(mu_);
    if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(fd));
  }

  Status Lost(const Status& s, const std::string& what) const {
    if (s.code() == StatusCode::kDeadlineExceeded)
      return DeadlineExceeded("the store at " + where_ + " did not answer " + what + " within " + Ms(timeout()));
    return Unavailable("lost the store server at " + where_ + " during " + what + " (" + s.message() +
                       "); did the launcher (or rank 0) exit?");
  }

  // One request, one reply, within timeout().
  StatusOr<Reply> Call(const std::string& frame, const std::string& what) {
    auto deadline = SteadyClock::now() + timeout();
    ZT_ASSIGN_OR_RETURN(Fd fd, Acquire(deadline));
    Status s = SendAll(fd.get(), frame.data(), frame.size(), deadline, "the store at " + where_);
    if (!s.ok()) return Lost(s, what);
    StatusOr<Reply> r = ReadReply(fd.get(), deadline);
    if (!r.ok()) return Lost(r.status(), what);
    Release(std::move(fd));
    return r;
  }

  // A Get or Wait: the reply comes when the keys exist; after `timeout`, cancel it.
  StatusOr<Reply> WaitingCall(const std::string& frame, const std::vector<std::string>& keys, milliseconds timeout) {
    auto deadline = SteadyClock::now() + std::max(timeout, milliseconds(0));
    const std::string what = "a wait for " + JoinKeys(keys);
    ZT_ASSIGN_OR_RETURN(Fd fd, Acquire(std::max(deadline, SteadyClock::now() + kCancelGrace)));
    Status s = SendAll(fd.get(), frame.data(), frame.size(), SteadyClock::now() + kCancelGrace + timeout,
                       "the store at " + where_);
    if (!s.ok()) return Lost(s, what);
    StatusOr<Reply> r = ReadReply(fd.get(), deadline);
    if (r.ok()) {
      Release(std::move(fd));
      return r;
    }
    if (r.status().code() != StatusCode::kDeadlineExceeded) return Lost(r.status(), what);
    // Our deadline passed before the answer began. Cancel; the server answers the request (ok, or
    // the keys still missing), then the cancel.
    auto grace = SteadyClock::now() + kCancelGrace;
    std::string cancel = FrameWriter(Op::kCancel).Finish();
    s = SendAll(fd.get(), cancel.data(), cancel.size(), grace, "the store at " + where_);
    if (!s.ok()) return Lost(s, what);
    auto unanswered = [&](const Status& st) -> Status {
      if (st.code() != StatusCode::kDeadlineExceeded) return Lost(st, what);
      return WaitTimedOut(timeout, keys, " (and the store at " + where_ + " did not answer the cancel)");
    };
    StatusOr<Reply> first = ReadReply(fd.get(), grace);
    if (!first.ok()) return unanswered(first.status());
    StatusOr<Reply> second = ReadReply(fd.get(), grace);
    if (!second.ok()) return unanswered(second.status());
    if (second->op != Op::kOk) return Garbled("a cancel");
    Release(std::move(fd));
    return first;
  }

  std::string host_;
  int port_;
  std::string token_;
  std::string where_;
  std::mutex mu_;
  std::vector<Fd> idle_;
};

}  // namespace

StatusOr<std::unique_ptr<Store>> ConnectTcpStore(const std::string& host, int port, const std::string& token,
                                                 milliseconds timeout) {
  if (host.empty()) return InvalidArgument("store host is empty; give the launcher's host (ZT_STORE=host:port)");
  if (port < 1 || port > 65535)
    return InvalidArgument("store port " + std::to_string(port) + " is outside 1..65535 (ZT_STORE=host:port)");
  if (token.size() > wire::kMaxTokenBytes)
    return InvalidArgument("the job token is " + std::to_string(token.size()) + " bytes; the limit is " +
                           std::to_string(wire::kMaxTokenBytes) + " (check ZT_STORE_TOKEN)");
  auto store = std::make_unique<TcpStore>(host, port, token, timeout);
  ZT_RETURN_IF_ERROR(store->ConnectFirst());
  return std::unique_ptr<Store>(std::move(store));
}

StatusOr<std::unique_ptr<Store>> ConnectTcpStore(const std::string& host_port, const std::string& token,
                                                 milliseconds timeout) {
  ZT_ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(host_port));
  return ConnectTcpStore(hp.host, hp.port, token, timeout);
}

StatusOr<std::string> GenerateToken() {
  Fd fd(::open("/dev/urandom", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Unavailable(std::string("cannot open /dev/urandom for the job token: ") + std::strerror(errno));
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t r = ::read(fd.get(), bytes + got, sizeof(bytes) - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Unavailable("cannot read /dev/urandom for the job token");
    got += static_cast<size_t>(r);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char b : bytes) {
    token.push_back(kHex[b >> 4]);
    token.push_back(kHex[b & 15]);
  }
  return token;
}

}  // namespace zt::comm
