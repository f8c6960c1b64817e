// Gloo communicator: creation (join through the store, then gloo's full-mesh TCP connect), the
// collectives, Work objects and failure diagnosis. Invariants: no gloo exception leaves this
// file (every gloo call is wrapped); a failure names the rank concerned: the peer whose
// connection closed, or, when this rank only saw a neighbour give up, the rank that neighbour
// found dead (each rank writes its finding to the store before closing its connections).
#include "comm/gloo_communicator.h"

#include <net/if.h>
#include <netdb.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <functional>
#include <set>
#include <thread>

#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/rendezvous/context.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/types.h>

#include "comm/gloo_communicator_impl.h"
#include "comm/gloo_store_adapter.h"
#include "comm/memory_store.h"

namespace zt::comm {
namespace {

// Slot prefixes of this file's transfers; gloo's own collectives use 0x01-0x08.
constexpr uint8_t kRingSlotPrefix = 0x40;
constexpr uint8_t kP2PSlotPrefix = 0x41;
constexpr uint8_t kProbeSlotPrefix = 0x42;
// How long a failing rank lets the transport notice other closed connections before it looks.
constexpr auto kSettleTime = std::chrono::milliseconds(50);

class DoneWork final : public Work {
 public:
  explicit DoneWork(Status s) : status_(std::move(s)) {}
  Status Wait(std::chrono::milliseconds) override { return status_; }

 private:
  Status status_;
};

std::unique_ptr<Work> Done(Status s) { return std::make_unique<DoneWork>(std::move(s)); }

// A posted Send or Recv, completed in Wait. Must not outlive its communicator.
class P2PWork final : public Work {
 public:
  P2PWork(GlooCommunicator* comm, std::string op, bool is_send, int peer,
          std::unique_ptr<gloo::transport::UnboundBuffer> buf)
      : comm_(comm), op_(std::move(op)), is_send_(is_send), peer_(peer), buf_(std::move(buf)) {}
  ~P2PWork() override {
    // Never leave the transport writing into (or reading from) memory the caller may free.
    if (!done_) (void)Wait(comm_->timeout());
  }
  Status Wait(std::chrono::milliseconds timeout) override {
    if (done_) return status_;
    done_ = true;
    if (Status s = comm_->CheckUsable(op_.c_str()); !s.ok()) return status_ = s;
    auto deadline = GlooCommunicator::DeadlineAfter(timeout);
    try {
      bool ok = is_send_ ? buf_->waitSend(GlooCommunicator::Remaining(deadline))
                         : buf_->waitRecv(GlooCommunicator::Remaining(deadline));
      if (!ok) throw std::runtime_error("operation was aborted");
      status_ = OkStatus();
    } catch (const std::exception& e) {
      status_ = comm_->Fail(op_, peer_, e.what(), timeout);
    } catch (...) {
      status_ = comm_->Fail(op_, peer_, "unknown exception from gloo", timeout);
    }
    return status_;
  }

 private:
  GlooCommunicator* comm_;
  std::string op_;
  bool is_send_;
  int peer_;
  std::unique_ptr<gloo::transport::UnboundBuffer> buf_;
  bool done_ = false;
  Status status_;
};

bool IsReducible(DType t) { return t == DType::kF32 || t == DType::kBF16 || t == DType::kF16; }

Status CheckData(const char* op, const char* name, const Tensor& t) {
  if (t.numel() > 0 && t.data == nullptr) {
    return InvalidArgument(std::string(op) + ": tensor '" + name + "' has " + std::to_string(t.numel()) +
                           " elements but no data");
  }
  return OkStatus();
}

std::string RankList(const std::vector<int>& ranks) {
  std::string s = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i) s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s;
}

std::vector<int> ParseRanks(const std::string& s) {
  std::vector<int> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    try {
      out.push_back(std::stoi(s.substr(i, j - i)));
    } catch (const std::exception&) {
    }
    i = j + 1;
  }
  return out;
}

// What gloo's message says happened, in a few words.
std::string Cause(const std::string& m) {
  if (m.find("closed by peer") != std::string::npos || m.find("Socket closed") != std::string::npos ||
      m.find("unexpectedly closed") != std::string::npos)
    return "connection closed by peer";
  if (m.find("reset by peer") != std::string::npos) return "connection reset by peer";
  if (m.find("Broken pipe") != std::string::npos) return "broken pipe";
  if (m.find("imed out") != std::string::npos || m.find("timeout") != std::string::npos) return "timed out";
  return "transport error";
}

void IgnoreSigpipeIfDefault() {
  struct sigaction cur {};
  if (sigaction(SIGPIPE, nullptr, &cur) == 0 && cur.sa_handler == SIG_DFL) {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, nullptr);
  }
}

Status CheckResolvable(const std::string& host, const std::string& who) {
  struct addrinfo hints {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo* result = nullptr;
  int rv = getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (result != nullptr) freeaddrinfo(result);
  if (rv != 0 || result == nullptr) {
    return InvalidArgument(who + ": '" + host + "' is neither a network interface of this host nor a host name or " +
                           "address that resolves (" + (rv != 0 ? gai_strerror(rv) : "no addresses") +
                           "); give an address or interface name of this host that the other ranks can reach");
  }
  return OkStatus();
}

std::string HostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown-host";
  return buf;
}

// "gloo/3/mesh/2" or ".../rank_2" -> 2 (gloo's per-rank rendezvous keys); -1 when not one.
int RankOfMeshKey(const std::string& key) {
  size_t p = key.find_last_of("/_");
  std::string tail = p == std::string::npos ? key : key.substr(p + 1);
  if (tail.empty() || tail.size() > 9 || !std::all_of(tail.begin(), tail.end(), ::isdigit)) return -1;
  return std::stoi(tail);
}

}  // namespace

GlooCommunicator::GlooCommunicator(Store& store, std::string prefix, int rank, int world_size,
                                   std::shared_ptr<gloo::transport::Device> device,
                                   std::shared_ptr<gloo::Context> context, std::vector<std::string> hosts,
                                   std::chrono::milliseconds timeout)
    : store_(store),
      prefix_(std::move(prefix)),
      rank_(rank),
      world_size_(world_size),
      hosts_(std::move(hosts)),
      device_(std::move(device)),
      context_(std::move(context)) {
  timeout_ = timeout;
}

GlooCommunicator::~GlooCommunicator() {
  probes_.clear();
  try {
    context_.reset();
    device_.reset();
  } catch (...) {  // gloo's destructors should not throw; never let them terminate the process
  }
}

std::string GlooCommunicator::Describe() const {
  return "gloo rank " + std::to_string(rank_) + "/" + std::to_string(world_size_);
}

GlooCommunicator::Clock::time_point GlooCommunicator::DeadlineAfter(std::chrono::milliseconds timeout) {
  // gloo's own cap (100 hours) keeps now + timeout from overflowing.
  return Clock::now() + std::clamp(timeout, std::chrono::milliseconds(0),
                                   std::chrono::milliseconds(std::chrono::hours(100)));
}

std::chrono::milliseconds GlooCommunicator::Remaining(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return std::max(left, std::chrono::milliseconds(1));
}

uint64_t GlooCommunicator::NextSlot(uint8_t prefix) { return gloo::Slot::build(prefix, seq_++); }

std::string GlooCommunicator::RankName(int r) const {
  std::string s = "rank " + std::to_string(r);
  // Name hosts only when the job spans several: "rank 2 (on node7)".
  if (std::adjacent_find(hosts_.begin(), hosts_.end(), std::not_equal_to<>()) != hosts_.end())
    s += " (on " + hosts_[r] + ")";
  return s;
}

Status GlooCommunicator::CheckUsable(const char* op) {
  std::lock_guard<std::mutex> l(mu_);
  if (broken_.ok()) return OkStatus();
  return Status(broken_.code(), std::string(op) + ": " + Describe() +
                                    " is unusable after an earlier failure; restart the job. The failure: " +
                                    broken_.message());
}

std::vector<int> GlooCommunicator::BrokenPeers() {
  // Posting a receive on a pair whose connection has closed rethrows the pair's error; on a live
  // pair it only tells the peer we are ready (harmless: the slot is never sent to). gloo also
  // closes a pair when one of our own waits on it times out: that is not the peer's doing.
  std::vector<int> broken;
  for (int j = 0; j < world_size_; ++j) {
    if (j == rank_) continue;
    try {
      auto buf = context_->createUnboundBuffer(&probe_byte_, 1);
      buf->recv(j, gloo::Slot::build(kProbeSlotPrefix, 0));
      probes_.push_back(std::move(buf));
    } catch (const std::exception& e) {
      if (std::string(e.what()).find("Application timeout") == std::string::npos) broken.push_back(j);
    } catch (...) {
      broken.push_back(j);
    }
  }
  return broken;
}

Status GlooCommunicator::Fail(const std::string& op, int peer, const std::string& gloo_message,
                              std::chrono::milliseconds waited) {
  if (waited.count() < 0) waited = timeout();
  std::lock_guard<std::mutex> l(mu_);
  if (!broken_.ok()) return broken_;
  std::this_thread::sleep_for(kSettleTime);
  std::vector<int> broken = BrokenPeers();
  // A broken peer that reported a finding in the store gave up on its own (and then closed its
  // connections); the ranks it found dead are the cause, not it.
  std::set<int> reporters, reported_dead;
  for (int j : broken) {
    std::string key = prefix_ + "failed/" + std::to_string(j);
    if (!store_.Wait({key}, std::chrono::milliseconds(0)).ok()) continue;
    StatusOr<std::string> v = store_.Get(key);
    if (!v.ok()) continue;
    reporters.insert(j);
    for (int d : ParseRanks(*v))
      if (d >= 0 && d < world_size_ && d != rank_) reported_dead.insert(d);  // the store is not trusted
  }
  std::vector<int> dead;
  for (int j : broken)
    if (!reporters.count(j)) dead.push_back(j);
  bool second_hand = false;
  if (dead.empty() && !reported_dead.empty()) {
    dead.assign(reported_dead.begin(), reported_dead.end());
    second_hand = true;
  }
  std::string finding;
  for (size_t i = 0; i < dead.size(); ++i) finding += (i ? "," : "") + std::to_string(dead[i]);
  (void)store_.Set(prefix_ + "failed/" + std::to_string(rank_), finding);  // best effort
  try {
    context_->closeConnections();  // peers blocked on this rank fail now, not at their timeout
  } catch (...) {
  }

  std::string head = op + " failed on " + Describe() + ": ";
  std::string tail = "; the job cannot continue (gloo: " + gloo_message + ")";
  if (!dead.empty()) {
    std::string who;
    for (size_t i = 0; i < dead.size(); ++i) who += (i ? ", " : "") + RankName(dead[i]);
    std::string how;
    if (second_hand) {
      how = "reported by " + RankList({reporters.begin(), reporters.end()}) +
            ", which then closed their connections to this rank";
    } else if (peer >= 0 && std::find(dead.begin(), dead.end(), peer) == dead.end()) {
      // This rank's own exchange was with a live neighbour that gave up on the dead rank first.
      how = "its connection to this rank closed; rank " + std::to_string(peer) + ", which this rank was " +
            "exchanging with, " + (reporters.count(peer) ? "found it first and closed" : "then failed too");
    } else {
      how = Cause(gloo_message);
    }
    broken_ = Unavailable(head + who + " disconnected (" + how + ")" + tail);
  } else if (!reporters.empty()) {
    broken_ = Unavailable(head + RankList({reporters.begin(), reporters.end()}) +
                          " gave up (its own operation failed without finding a dead peer)" + tail);
  } else if (Cause(gloo_message) == "timed out") {
    std::string whom = peer >= 0 ? RankName(peer) : "the other ranks";
    broken_ = DeadlineExceeded(head + "timed out after " + std::to_string(waited.count()) +
                               " ms waiting for " + whom +
                               " (no connection closed: a rank is stalled, or the ranks called collectives"
                               " in different orders or with different sizes)" + tail);
  } else {
    broken_ = Unavailable(head + (peer >= 0 ? "transport error with " + RankName(peer) : "transport error") + tail);
  }
  return broken_;
}

std::unique_ptr<Work> GlooCommunicator::AllGather(const Tensor& in, const Tensor& out) {
  const char* op = "all_gather";
  if (Status s = CheckUsable(op); !s.ok()) return Done(s);
  if (in.dtype != out.dtype || out.numel() != world_size_ * in.numel()) {
    return Done(InvalidArgument(std::string(op) + ": out must be " + std::to_string(world_size_) + " x in (" +
                                DTypeName(in.dtype) + "[" + std::to_string(in.numel()) + "]), got " +
                                DTypeName(out.dtype) + "[" + std::to_string(out.numel()) + "]"));
  }
  if (Status s = CheckData(op, "in", in); !s.ok()) return Done(s);
  if (Status s = CheckData(op, "out", out); !s.ok()) return Done(s);
  const size_t esize = DTypeSize(in.dtype);
  char* mine = static_cast<char*>(out.data) + static_cast<size_t>(rank_) * in.nbytes();
  if (in.nbytes() > 0 && mine != in.data) std::memmove(mine, in.data, in.nbytes());
  if (world_size_ == 1 || in.numel() == 0) return Done(OkStatus());
  auto deadline = DeadlineAfter(timeout());
  return Done(RingAllGather(op, out.data, esize, out.numel(), in.numel(), NextSlot(kRingSlotPrefix), deadline));
}

namespace {
// out[i] = v[i] / world (avg) and rounds once to out's dtype.
void Finish(const float* v, int64_t n, ReduceOp op, int world, DType dtype, void* out) {
  const float w = static_cast<float>(world);
  for (int64_t i = 0; i < n; ++i) {
    float x = op == ReduceOp::kAvg ? v[i] / w : v[i];
    switch (dtype) {
      case DType::kF32: static_cast<float*>(out)[i] = x; break;
      case DType::kBF16: static_cast<BFloat16*>(out)[i] = FloatToBF16(x); break;
      case DType::kF16: static_cast<Half*>(out)[i] = FloatToHalf(x); break;
      default: ZT_CHECK(false) << "reduction into " << DTypeName(dtype);
    }
  }
}
}  // namespace

std::unique_ptr<Work> GlooCommunicator::ReduceScatter(const Tensor& in, const Tensor& out, ReduceOp op) {
  const std::string name = std::string("reduce_scatter(") + ReduceOpName(op) + ")";
  if (Status s = CheckUsable(name.c_str()); !s.ok()) return Done(s);
  if (!IsReducible(in.dtype) || in.dtype != out.dtype || in.numel() != world_size_ * out.numel()) {
    return Done(InvalidArgument(name + ": needs f32, bf16 or f16 tensors with in = " + std::to_string(world_size_) +
                                " x out, got in " + DTypeName(in.dtype) + "[" + std::to_string(in.numel()) +
                                "], out " + DTypeName(out.dtype) + "[" + std::to_string(out.numel()) + "]"));
  }
  if (Status s = CheckData(name.c_str(), "in", in); !s.ok()) return Done(s);
  if (Status s = CheckData(name.c_str(), "out", out); !s.ok()) return Done(s);
  const int64_t chunk = out.numel();
  if (chunk == 0) return Done(OkStatus());
  if (world_size_ == 1) {
    if (out.data != in.data) std::memmove(out.data, in.data, out.nbytes());
    return Done(OkStatus());
  }
  std::vector<float> acc(chunk), tmp(chunk);
  Status s = RingReduceScatter(name, in.data, in.dtype, in.numel(), chunk, acc.data(), tmp.data(),
                               NextSlot(kRingSlotPrefix), DeadlineAfter(timeout()));
  if (s.ok()) Finish(acc.data(), chunk, op, world_size_, out.dtype, out.data);
  return Done(s);
}

std::unique_ptr<Work> GlooCommunicator::AllReduce(const Tensor& x, ReduceOp op) {
  const std::string name = std::string("all_reduce(") + ReduceOpName(op) + ")";
  if (Status s = CheckUsable(name.c_str()); !s.ok()) return Done(s);
  if (!IsReducible(x.dtype)) {
    return Done(InvalidArgument(name + ": needs an f32, bf16 or f16 tensor, got " + DTypeName(x.dtype)));
  }
  if (Status s = CheckData(name.c_str(), "x", x); !s.ok()) return Done(s);
  const int64_t total = x.numel();
  if (world_size_ == 1 || total == 0) return Done(OkStatus());
  // Reduce-scatter into this rank's chunk, finish it (avg, rounding) in place, all-gather the
  // finished chunks: every rank ends with the same bits, equal to ReduceScatter's slices.
  const int64_t chunk = (total + world_size_ - 1) / world_size_;
  std::vector<float> acc(chunk), tmp(chunk);
  auto deadline = DeadlineAfter(timeout());
  Status s = RingReduceScatter(name, x.data, x.dtype, total, chunk, acc.data(), tmp.data(),
                               NextSlot(kRingSlotPrefix), deadline);
  if (!s.ok()) return Done(s);
  int64_t begin = std::min<int64_t>(total, rank_ * chunk);
  int64_t n = std::min<int64_t>(total, begin + chunk) - begin;
  Finish(acc.data(), n, op, world_size_, x.dtype,
         static_cast<char*>(x.data) + static_cast<size_t>(begin) * DTypeSize(x.dtype));
  return Done(RingAllGather(name, x.data, DTypeSize(x.dtype), total, chunk, NextSlot(kRingSlotPrefix), deadline));
}

std::unique_ptr<Work> GlooCommunicator::Broadcast(const Tensor& x, int root) {
  const char* op = "broadcast";
  if (Status s = CheckUsable(op); !s.ok()) return Done(s);
  if (root < 0 || root >= world_size_) {
    return Done(InvalidArgument("broadcast: root " + std::to_string(root) + " is not a rank of " + Describe()));
  }
  if (Status s = CheckData(op, "x", x); !s.ok()) return Done(s);
  if (world_size_ == 1 || x.numel() == 0) return Done(OkStatus());
  uint32_t tag = seq_++;
  try {
    gloo::BroadcastOptions opts(context_);
    opts.setOutput(static_cast<char*>(x.data), x.nbytes());
    opts.setRoot(root);
    opts.setTag(tag);
    opts.setTimeout(Remaining(DeadlineAfter(timeout())));
    gloo::broadcast(opts);
  } catch (const std::exception& e) {
    return Done(Fail(op, -1, e.what()));  // gloo does not say which peer it was waiting on
  } catch (...) {
    return Done(Fail(op, -1, "unknown exception from gloo"));
  }
  return Done(OkStatus());
}

std::unique_ptr<Work> GlooCommunicator::Barrier() {
  const char* op = "barrier";
  if (Status s = CheckUsable(op); !s.ok()) return Done(s);
  if (world_size_ == 1) return Done(OkStatus());
  uint32_t tag = seq_++;
  try {
    gloo::BarrierOptions opts(context_);
    opts.setTag(tag);
    opts.setTimeout(Remaining(DeadlineAfter(timeout())));
    gloo::barrier(opts);
  } catch (const std::exception& e) {
    return Done(Fail(op, -1, e.what()));
  } catch (...) {
    return Done(Fail(op, -1, "unknown exception from gloo"));
  }
  return Done(OkStatus());
}

namespace {
Status CheckPeer(const std::string& op, int peer, int tag, int rank, int world) {
  if (peer < 0 || peer >= world || peer == rank) {
    return InvalidArgument(op + ": peer " + std::to_string(peer) + " is not another rank of a world of " +
                           std::to_string(world) + " (this is rank " + std::to_string(rank) + ")");
  }
  if (tag < 0) return InvalidArgument(op + ": tag " + std::to_string(tag) + " is negative");
  return OkStatus();
}
}  // namespace

std::unique_ptr<Work> GlooCommunicator::Send(const Tensor& x, int dst, int tag) {
  const std::string op = "send to rank " + std::to_string(dst) + " (tag " + std::to_string(tag) + ")";
  if (Status s = CheckUsable(op.c_str()); !s.ok()) return Done(s);
  if (Status s = CheckPeer(op, dst, tag, rank_, world_size_); !s.ok()) return Done(s);
  if (Status s = CheckData(op.c_str(), "x", x); !s.ok()) return Done(s);
  try {
    auto buf = context_->createUnboundBuffer(x.data, x.nbytes());
    buf->send(dst, gloo::Slot::build(kP2PSlotPrefix, static_cast<uint32_t>(tag)));
    return std::make_unique<P2PWork>(this, op, true, dst, std::move(buf));
  } catch (const std::exception& e) {
    return Done(Fail(op, dst, e.what()));
  } catch (...) {
    return Done(Fail(op, dst, "unknown exception from gloo"));
  }
}

std::unique_ptr<Work> GlooCommunicator::Recv(const Tensor& x, int src, int tag) {
  const std::string op = "recv from rank " + std::to_string(src) + " (tag " + std::to_string(tag) + ")";
  if (Status s = CheckUsable(op.c_str()); !s.ok()) return Done(s);
  if (Status s = CheckPeer(op, src, tag, rank_, world_size_); !s.ok()) return Done(s);
  if (Status s = CheckData(op.c_str(), "x", x); !s.ok()) return Done(s);
  try {
    auto buf = context_->createUnboundBuffer(x.data, x.nbytes());
    buf->recv(src, gloo::Slot::build(kP2PSlotPrefix, static_cast<uint32_t>(tag)));
    return std::make_unique<P2PWork>(this, op, false, src, std::move(buf));
  } catch (const std::exception& e) {
    return Done(Fail(op, src, e.what()));
  } catch (...) {
    return Done(Fail(op, src, "unknown exception from gloo"));
  }
}

StatusOr<std::unique_ptr<Communicator>> CreateGlooCommunicator(Store& store, int rank, int world_size,
                                                               std::chrono::milliseconds timeout,
                                                               const std::string& interface_or_host) {
  const std::string who = "gloo communicator setup on rank " + std::to_string(rank) + " of " +
                          std::to_string(world_size);
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    return InvalidArgument(who + ": rank must be in [0, world size) and world size >= 1");
  }
  if (timeout.count() <= 0) {
    return InvalidArgument(who + ": timeout must be > 0 ms, got " + std::to_string(timeout.count()));
  }
  IgnoreSigpipeIfDefault();

  // Keys of the n-th communicator created by this rank on this store live under "gloo/<n>/".
  ZT_ASSIGN_OR_RETURN(int64_t generation, store.Add("gloo/created/" + std::to_string(rank), 1));
  const std::string prefix = "gloo/" + std::to_string(generation) + "/";

  std::shared_ptr<gloo::transport::Device> device;
  try {
    gloo::transport::tcp::attr attr;
    if (if_nametoindex(interface_or_host.c_str()) != 0) {
      attr.iface = interface_or_host;
    } else {
      // This gloo reads getaddrinfo's result even when the lookup failed (a crash): look first.
      ZT_RETURN_IF_ERROR(CheckResolvable(interface_or_host, who));
      attr.hostname = interface_or_host;
    }
    device = gloo::transport::tcp::CreateDevice(attr);
  } catch (const std::exception& e) {
    return InvalidArgument(who + ": cannot listen on '" + interface_or_host + "' (" + e.what() +
                           "); give an address or interface name of this host that the other ranks can reach");
  }

  // Join: every rank announces itself, then waits (bounded) for all the others, so that a rank
  // that never started is named instead of surfacing as a connect error.
  std::string host = HostName();
  ZT_RETURN_IF_ERROR(store.Set(prefix + "joined/" + std::to_string(rank), host));
  std::vector<std::string> keys;
  for (int r = 0; r < world_size; ++r) keys.push_back(prefix + "joined/" + std::to_string(r));
  if (Status s = store.Wait(keys, timeout); !s.ok()) {
    if (s.code() != StatusCode::kDeadlineExceeded) return s.WithContext(who);
    std::vector<int> missing;
    std::vector<std::string> missing_keys;
    for (int r = 0; r < world_size; ++r) {
      if (!store.Wait({keys[r]}, std::chrono::milliseconds(0)).ok()) {
        missing.push_back(r);
        missing_keys.push_back(keys[r]);
      }
    }
    return DeadlineExceeded(who + " timed out after " + std::to_string(timeout.count()) + " ms: " +
                            RankList(missing) + " never joined (store keys " + JoinKeys(missing_keys) +
                            " missing); start every rank with the same store and world size " +
                            std::to_string(world_size) + ", or raise ZT_COMM_TIMEOUT_S");
  }
  std::vector<std::string> hosts(world_size);
  for (int r = 0; r < world_size; ++r) {
    ZT_ASSIGN_OR_RETURN(hosts[r], store.Get(keys[r]));
  }

  auto context = std::make_shared<gloo::rendezvous::Context>(rank, world_size);
  GlooStoreAdapter adapter(store, prefix + "mesh/", timeout);
  try {
    context->setTimeout(timeout);
    context->connectFullMesh(adapter, device);
  } catch (const GlooStoreError& e) {
    int peer = RankOfMeshKey(adapter.last_key());
    return Status(e.status().code(),
                  who + ": connecting to peers failed" +
                      (peer >= 0 ? " while waiting for rank " + std::to_string(peer) + "'s address" : "") +
                      " (it joined, then stopped: did it crash?): " + e.status().message());
  } catch (const std::exception& e) {
    int peer = RankOfMeshKey(adapter.last_key());
    return Unavailable(who + ": connecting to peers failed" +
                       (peer >= 0 ? " (last contacted: rank " + std::to_string(peer) + ")" : "") + ": " + e.what() +
                       "; check that every rank is alive and that '" + interface_or_host +
                       "' is reachable from the others");
  } catch (...) {
    return Unavailable(who + ": connecting to peers failed with an unknown exception from gloo");
  }
  return std::unique_ptr<Communicator>(new GlooCommunicator(store, prefix, rank, world_size, std::move(device),
                                                            std::move(context), std::move(hosts), timeout));
}

}  // namespace zt::comm
