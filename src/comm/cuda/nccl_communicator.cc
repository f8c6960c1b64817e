// NCCL communicator: creation (join through the store, NCCL's unique id from rank 0, non-blocking
// ncclCommInitRankConfig bounded by the timeout), teardown, the watchdog, failure diagnosis.
// Invariants: every wait here is bounded by the communicator's timeout; a failure aborts the NCCL
// communicator exactly once and names the ranks concerned as well as the store lets us know them:
// a failing rank writes "nccl/<n>/failed/<rank>" and looks, for a short grace period, which peers
// wrote theirs; peers that stay silent are the likely dead or stalled ones (NCCL itself cannot
// say which peer failed).
#include "comm/cuda/nccl_communicator.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "comm/cuda/nccl_communicator_impl.h"
#include "comm/memory_store.h"
#include "core/logging.h"

namespace zt::comm {
namespace {

using std::chrono::milliseconds;

std::string RankList(const std::vector<int>& ranks) {
  std::string s = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i) s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s;
}

std::string Hex(const void* data, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  const auto* p = static_cast<const unsigned char*>(data);
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[p[i] >> 4];
    s[2 * i + 1] = kDigits[p[i] & 15];
  }
  return s;
}

bool Unhex(const std::string& s, void* out, size_t n) {
  if (s.size() != 2 * n) return false;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  auto* p = static_cast<unsigned char*>(out);
  for (size_t i = 0; i < n; ++i) {
    int hi = digit(s[2 * i]), lo = digit(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    p[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

std::string HostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown-host";
  return buf;
}

std::string NcclError(ncclResult_t r) {
  std::string s = ncclGetErrorString(r);
  const char* last = ncclGetLastError(nullptr);
  if (last != nullptr && last[0] != '\0') s += "; NCCL: " + std::string(last);
  return s;
}

// Keeps NVLink multicast (NVLS) off: on the shared multi-GPU hosts it can take every GPU of the
// host out of service (docs/comm.md). An explicit setting is left alone, with a warning.
void KeepNvlsOff() {
  setenv("NCCL_NVLS_ENABLE", "0", 0);
  const char* v = getenv("NCCL_NVLS_ENABLE");
  if (v != nullptr && std::strcmp(v, "0") != 0) {
    ZT_LOG(WARNING) << "NCCL_NVLS_ENABLE=" << v << " is set: NVLink multicast should stay off (docs/comm.md)";
  }
}

// How long a failing rank looks for its peers' reports: long enough for peers blocked in the same
// operation to time out too, short against the timeout.
milliseconds Grace(milliseconds timeout) { return std::clamp(timeout / 4, milliseconds(200), milliseconds(2000)); }

}  // namespace

NcclOp::~NcclOp() {
  if (event != nullptr) cudaEventDestroy(event);
}

NcclCommunicatorImpl::NcclCommunicatorImpl(Store& store, std::string prefix, int rank, int world_size, int device,
                                           ncclComm_t comm, cudaStream_t stream, bool own_stream,
                                           std::chrono::milliseconds timeout)
    : store_(store),
      prefix_(std::move(prefix)),
      rank_(rank),
      world_size_(world_size),
      device_(device),
      stream_(stream),
      own_stream_(own_stream),
      comm_(comm) {
  timeout_ = timeout;
}

Status NcclCommunicatorImpl::Start() {
  ZT_RETURN_IF_ERROR(CudaStatusOf(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking),
                                  "creating the NCCL communicator's copy stream"));
  ZT_RETURN_IF_ERROR(CudaStatusOf(cudaMalloc(reinterpret_cast<void**>(&scratch_), sizeof(float)),
                                  "allocating the NCCL communicator's barrier element"));
  ZT_RETURN_IF_ERROR(CudaStatusOf(cudaMemset(scratch_, 0, sizeof(float)), "clearing the barrier element"));
  watchdog_ = std::thread([this] { WatchdogLoop(); });
  return OkStatus();
}

NcclCommunicatorImpl::~NcclCommunicatorImpl() {
  {
    std::lock_guard<std::mutex> l(state_mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  cudaSetDevice(device_);
  {
    std::lock_guard<std::mutex> l(nccl_mu_);
    if (comm_ != nullptr) {
      // Finalize (flushes outstanding work) bounded by the timeout; abort if it does not finish.
      ncclResult_t r = ncclCommFinalize(comm_);
      auto deadline = NcclClock::now() + timeout_;
      while (r == ncclInProgress && NcclClock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        if (ncclCommGetAsyncError(comm_, &r) != ncclSuccess) r = ncclInternalError;
      }
      if (r == ncclSuccess) {
        ncclCommDestroy(comm_);
      } else {
        ZT_LOG(WARNING) << Describe() << ": finalizing NCCL did not finish (" << ncclGetErrorString(r)
                        << "); aborting it";
        ncclCommAbort(comm_);
      }
      comm_ = nullptr;
    }
  }
  if (scratch_ != nullptr) cudaFree(scratch_);
  if (copy_stream_ != nullptr) cudaStreamDestroy(copy_stream_);
  if (own_stream_ && stream_ != nullptr) cudaStreamDestroy(stream_);
}

std::string NcclCommunicatorImpl::Describe() const {
  return "nccl rank " + std::to_string(rank_) + "/" + std::to_string(world_size_) + " (cuda:" +
         std::to_string(device_) + ")";
}

Status NcclCommunicatorImpl::CheckUsable(const std::string& op) {
  std::lock_guard<std::mutex> l(state_mu_);
  if (broken_.ok()) return OkStatus();
  return Status(broken_.code(), op + ": " + Describe() +
                                    " is unusable after an earlier failure; restart the job. The failure: " +
                                    broken_.message());
}

Status NcclCommunicatorImpl::PollAsync(const std::string& op) {
  ncclResult_t state = ncclSuccess;
  {
    std::lock_guard<std::mutex> l(nccl_mu_);
    if (comm_ == nullptr) return CheckUsable(op);
    ncclResult_t q = ncclCommGetAsyncError(comm_, &state);
    if (q != ncclSuccess) state = q;
  }
  if (state == ncclSuccess || state == ncclInProgress) return OkStatus();
  return Fail(op, state, milliseconds(0));
}

Status NcclCommunicatorImpl::Health() {
  ZT_RETURN_IF_ERROR(CheckUsable("health check"));
  return PollAsync("an operation in flight");
}

std::vector<int> NcclCommunicatorImpl::PeersThatFailed(milliseconds grace) {
  std::vector<int> reported;
  auto deadline = NcclClock::now() + grace;
  for (;;) {
    reported.clear();
    for (int r = 0; r < world_size_; ++r) {
      if (r == rank_) continue;
      if (store_.Wait({prefix_ + "failed/" + std::to_string(r)}, milliseconds(0)).ok()) reported.push_back(r);
    }
    if (static_cast<int>(reported.size()) == world_size_ - 1 || NcclClock::now() >= deadline) return reported;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

Status NcclCommunicatorImpl::Fail(const std::string& op, ncclResult_t result, milliseconds waited) {
  std::lock_guard<std::mutex> serial(fail_mu_);
  {
    std::lock_guard<std::mutex> l(state_mu_);
    if (!broken_.ok()) return broken_;
  }
  std::string detail = result == ncclSuccess
                           ? "timed out after " + std::to_string(waited.count()) + " ms"
                           : "failed: " + NcclError(result);
  {
    // Abort first: it stops NCCL kernels spinning on a dead peer, so nothing queued behind them
    // (and no stream synchronization elsewhere in this process) stays blocked.
    std::lock_guard<std::mutex> l(nccl_mu_);
    if (comm_ != nullptr) {
      ncclCommAbort(comm_);
      comm_ = nullptr;
    }
  }
  std::string peers;
  if (world_size_ > 1) {
    (void)store_.Set(prefix_ + "failed/" + std::to_string(rank_), op);
    milliseconds grace = Grace(timeout_);
    std::vector<int> failed = PeersThatFailed(grace);
    std::vector<int> silent;
    for (int r = 0; r < world_size_; ++r) {
      if (r != rank_ && std::find(failed.begin(), failed.end(), r) == failed.end()) silent.push_back(r);
    }
    if (!silent.empty()) {
      peers = "; " + RankList(silent) + " did not report a failure through the store within " + std::to_string(grace.count()) + " ms: " +
              (silent.size() == 1 ? "it" : "one of them") +
              " may have died or stalled (NCCL cannot tell which peer failed)";
      if (!failed.empty()) peers += "; " + RankList(failed) + " failed too";
    } else {
      peers = "; every other rank failed too (" + RankList(failed) +
              "): the ranks may have called collectives in different orders or with different sizes, or a link "
              "between the GPUs failed";
    }
  }
  Status s(result == ncclSuccess                                            ? StatusCode::kDeadlineExceeded
           : (result == ncclRemoteError || result == ncclSystemError) ? StatusCode::kUnavailable
                                                                       : StatusCode::kInternal,
           "NCCL " + op + " on " + Describe() + " " + detail + peers +
               ". The communicator was aborted and the job cannot continue; restart it (a longer "
               "ZT_COMM_TIMEOUT_S helps only if a peer was slow, not dead)");
  {
    std::lock_guard<std::mutex> l(state_mu_);
    broken_ = s;
    watched_.clear();
  }
  ZT_LOG(ERROR) << s.message();
  return s;
}

Status NcclCommunicatorImpl::Record(NcclOp& done, cudaStream_t s, bool watch, const std::shared_ptr<NcclOp>& self) {
  ZT_RETURN_IF_ERROR(CudaStatusOf(cudaEventCreateWithFlags(&done.event, cudaEventDisableTiming),
                                  done.name + ": creating an event"));
  ZT_RETURN_IF_ERROR(CudaStatusOf(cudaEventRecord(done.event, s), done.name + ": recording an event"));
  done.start = NcclClock::now();
  if (watch) {
    std::lock_guard<std::mutex> l(state_mu_);
    if (broken_.ok()) watched_.push_back(self);
  }
  return OkStatus();
}

Status NcclCommunicatorImpl::Watch(cudaStream_t stream, const std::string& what) {
  ZT_RETURN_IF_ERROR(CheckUsable(what));
  FlushP2P();
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  ZT_RETURN_IF_ERROR(CudaStatusOf(cudaStreamIsCapturing(stream, &capturing), what + ": querying the stream"));
  if (capturing != cudaStreamCaptureStatusNone) {
    return InvalidArgument(what + ": Watch was called on a stream being captured into a CUDA graph; call it "
                                  "after launching the graph");
  }
  auto op = std::make_shared<NcclOp>();
  op->name = what;
  op->launched = true;
  return Record(*op, stream, true, op);
}

void NcclCommunicatorImpl::WatchdogLoop() {
  cudaSetDevice(device_);
  // Event queries from this thread must not disturb a CUDA-graph capture on the issuing thread.
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  cudaThreadExchangeStreamCaptureMode(&mode);
  std::unique_lock<std::mutex> l(state_mu_);
  while (!stop_) {
    wake_.wait_for(l, milliseconds(10));
    if (stop_ || !broken_.ok()) continue;
    std::vector<std::shared_ptr<NcclOp>> ops(watched_.begin(), watched_.end());
    l.unlock();
    std::shared_ptr<NcclOp> late;
    std::vector<NcclOp*> finished;
    for (const auto& op : ops) {
      cudaError_t e = cudaEventQuery(op->event);
      if (e == cudaSuccess) {
        finished.push_back(op.get());
      } else if (e == cudaErrorNotReady) {
        if (NcclClock::now() - op->start > timeout_ && late == nullptr) late = op;
      } else {
        (void)cudaGetLastError();  // a device error: the next CUDA call on the issuing thread reports it
        finished.push_back(op.get());
      }
    }
    if (late != nullptr) {
      auto waited = std::chrono::duration_cast<milliseconds>(NcclClock::now() - late->start);
      (void)Fail(late->name + " (queued on a stream, not waited on)", ncclSuccess, waited);
    } else {
      (void)PollAsync("an operation in flight");
    }
    l.lock();
    for (NcclOp* f : finished) {
      auto it = std::find_if(watched_.begin(), watched_.end(), [f](const auto& p) { return p.get() == f; });
      if (it != watched_.end()) watched_.erase(it);
    }
  }
}

StatusOr<std::unique_ptr<NcclCommunicator>> CreateNcclCommunicator(Store& store, int rank, int world_size,
                                                                   std::chrono::milliseconds timeout,
                                                                   cudaStream_t stream) {
  const std::string who =
      "NCCL communicator setup on rank " + std::to_string(rank) + " of " + std::to_string(world_size);
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    return InvalidArgument(who + ": rank must be in [0, world size) and world size >= 1");
  }
  if (timeout.count() <= 0) {
    return InvalidArgument(who + ": timeout must be > 0 ms, got " + std::to_string(timeout.count()));
  }
  KeepNvlsOff();
  int device = -1;
  ZT_RETURN_IF_ERROR(CudaStatusOf(cudaGetDevice(&device), who + ": no CUDA device"));
  const auto deadline = NcclClock::now() + timeout;
  auto remaining = [&] {
    return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(deadline - NcclClock::now()));
  };

  // Keys of the n-th NCCL communicator created by this rank on this store live under "nccl/<n>/".
  ZT_ASSIGN_OR_RETURN(int64_t generation, store.Add("nccl/created/" + std::to_string(rank), 1));
  const std::string prefix = "nccl/" + std::to_string(generation) + "/";
  if (rank == 0) {
    ncclUniqueId id;
    ncclResult_t r = ncclGetUniqueId(&id);
    if (r != ncclSuccess) {
      return Unavailable(who + ": ncclGetUniqueId failed (" + NcclError(r) +
                         "); NCCL needs a network interface for its bootstrap (see NCCL_SOCKET_IFNAME)");
    }
    ZT_RETURN_IF_ERROR(store.Set(prefix + "id", Hex(&id, sizeof(id))));
  }
  // Join: every rank announces itself (rank 0 after publishing the id), then waits for the others,
  // so that a rank that never started is named instead of surfacing as an NCCL timeout.
  ZT_RETURN_IF_ERROR(store.Set(prefix + "joined/" + std::to_string(rank), HostName()));
  std::vector<std::string> keys;
  for (int r = 0; r < world_size; ++r) keys.push_back(prefix + "joined/" + std::to_string(r));
  if (Status s = store.Wait(keys, remaining()); !s.ok()) {
    if (s.code() != StatusCode::kDeadlineExceeded) return s.WithContext(who);
    std::vector<int> missing;
    std::vector<std::string> missing_keys;
    for (int r = 0; r < world_size; ++r) {
      if (!store.Wait({keys[r]}, milliseconds(0)).ok()) {
        missing.push_back(r);
        missing_keys.push_back(keys[r]);
      }
    }
    return DeadlineExceeded(who + " timed out after " + std::to_string(timeout.count()) + " ms: " +
                            RankList(missing) + " never joined (store keys " + JoinKeys(missing_keys) +
                            " missing); start every rank with the same store and world size " +
                            std::to_string(world_size) + ", or raise ZT_COMM_TIMEOUT_S");
  }
  ncclUniqueId id;
  ZT_ASSIGN_OR_RETURN(std::string id_hex, store.Get(prefix + "id"));
  if (!Unhex(id_hex, &id, sizeof(id))) {
    return DataLoss(who + ": store key " + prefix + "id does not hold an NCCL id (" + std::to_string(id_hex.size()) +
                    " characters, expected " + std::to_string(2 * sizeof(id)) +
                    " hex digits); is another program using this store's nccl/ keys?");
  }

  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // every call returns at once; we bound the waits
  ncclComm_t comm = nullptr;
  ncclResult_t r = ncclCommInitRankConfig(&comm, world_size, id, rank, &config);
  while (r == ncclInProgress && comm != nullptr && NcclClock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(500));
    if (ncclCommGetAsyncError(comm, &r) != ncclSuccess) r = ncclInternalError;
  }
  if (r != ncclSuccess) {
    bool timed_out = r == ncclInProgress;
    std::string err = timed_out ? "" : NcclError(r);
    if (comm != nullptr) ncclCommAbort(comm);
    if (timed_out) {
      return DeadlineExceeded(who + " timed out after " + std::to_string(timeout.count()) +
                              " ms in ncclCommInitRankConfig: every rank joined through the store, so one may "
                              "have died since, or NCCL could not connect the GPUs (run with NCCL_DEBUG=WARN)");
    }
    return Unavailable(who + ": ncclCommInitRankConfig failed: " + err);
  }
  bool own_stream = stream == nullptr;
  if (own_stream) {
    cudaError_t e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
      ncclCommAbort(comm);
      return CudaStatusOf(e, who + ": creating the communication stream");
    }
  }
  auto impl = std::make_unique<NcclCommunicatorImpl>(store, prefix, rank, world_size, device, comm, stream,
                                                     own_stream, timeout);
  ZT_RETURN_IF_ERROR(impl->Start().WithContext(who));
  return std::unique_ptr<NcclCommunicator>(std::move(impl));
}

}  // namespace zt::comm
