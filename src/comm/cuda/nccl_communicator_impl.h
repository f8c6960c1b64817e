// NcclCommunicatorImpl: the class behind CreateNcclCommunicator (internal to comm/cuda/; use
// nccl_communicator.h). nccl_communicator.cc holds setup, teardown, the watchdog and failure
// diagnosis; nccl_ops.cc the operations and their Work objects.
// Threads: one thread issues operations (as for every Communicator); the watchdog thread only
// polls events and NCCL's error state and may abort. Invariants: every call into NCCL on comm_
// holds nccl_mu_ and none of them blocks (the communicator is non-blocking), so the watchdog can
// always get in; comm_ is null once aborted or destroyed and never touched again; broken_ is set
// once, by Fail(), which runs one caller at a time (fail_mu_).
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "comm/cuda/nccl_communicator.h"

namespace zt::comm {

using NcclClock = std::chrono::steady_clock;

// A CUDA runtime result as a Status (out of memory: Unavailable; anything else: Internal).
inline Status CudaStatusOf(cudaError_t e, const std::string& what) {
  if (e == cudaSuccess) return OkStatus();
  return Status(e == cudaErrorMemoryAllocation ? StatusCode::kUnavailable : StatusCode::kInternal,
                what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

// One NCCL call (or group of send/recv calls) and the event recorded after it on its stream.
struct NcclOp {
  std::string name;
  bool launched = false;    // send/recv wait in a batch until a Wait or the next operation
  Status launch_status;     // of the call; the event is valid only when launched and OK
  cudaEvent_t event = nullptr;
  NcclClock::time_point start;
  ~NcclOp();
};

// A host tensor's stand-in: device memory from the communication stream's pool.
struct NcclStaged {
  void* host = nullptr;
  void* dev = nullptr;
  size_t bytes = 0;
  bool copy_back = false;  // an output: copied to `host` once the operation finished
};

class NcclCommunicatorImpl final : public NcclCommunicator {
 public:
  NcclCommunicatorImpl(Store& store, std::string prefix, int rank, int world_size, int device, ncclComm_t comm,
                       cudaStream_t stream, bool own_stream, std::chrono::milliseconds timeout);
  ~NcclCommunicatorImpl() override;
  // Allocates the scratch element and the copy stream, starts the watchdog.
  Status Start();

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  std::string Describe() const override;

  std::unique_ptr<Work> AllGather(const Tensor& in, const Tensor& out) override;
  std::unique_ptr<Work> ReduceScatter(const Tensor& in, const Tensor& out, ReduceOp op) override;
  std::unique_ptr<Work> AllReduce(const Tensor& x, ReduceOp op) override;
  std::unique_ptr<Work> Broadcast(const Tensor& x, int root) override;
  std::unique_ptr<Work> Send(const Tensor& x, int dst, int tag) override;
  std::unique_ptr<Work> Recv(const Tensor& x, int src, int tag) override;
  std::unique_ptr<Work> Barrier() override;

  Status EnqueueAllGather(const Tensor& in, const Tensor& out, cudaStream_t stream) override;
  Status EnqueueReduceScatter(const Tensor& in, const Tensor& out, ReduceOp op, cudaStream_t stream) override;
  Status EnqueueAllReduce(const Tensor& in, const Tensor& out, ReduceOp op, cudaStream_t stream) override;
  Status Watch(cudaStream_t stream, const std::string& what) override;
  Status Health() override;
  cudaStream_t stream() const override { return stream_; }
  int device() const override { return device_; }

  // --- used by the Work objects (nccl_ops.cc) ---
  // OK while usable; else the first failure, prefixed with `op`.
  Status CheckUsable(const std::string& op);
  // Runs `call` on comm_ (under nccl_mu_) and waits, bounded, while NCCL says it is in progress.
  // NCCL's refusal of the arguments is InvalidArgument; any other error fails the communicator.
  template <typename F>
  Status Issue(const std::string& op, F&& call);
  // Polls `done` (recorded after `op`) and NCCL's error state until done, failure or `timeout`.
  Status WaitFor(const NcclOp& done, std::chrono::milliseconds timeout);
  // Launches the pending send/recv batch, if any, as one NCCL group on stream_.
  void FlushP2P();
  void AddPending(bool send, const Tensor& dev, int peer, const std::shared_ptr<NcclOp>& batch);
  std::shared_ptr<NcclOp> PendingBatch();
  // Records an event after `op` on `s` into `done`; with `watch`, the watchdog bounds it.
  Status Record(NcclOp& done, cudaStream_t s, bool watch, const std::shared_ptr<NcclOp>& self);
  // The device memory behind `t`: t itself when it is memory of this device, else a staging
  // buffer (added to `staged`) that an input is copied into on stream_ and an output is copied
  // back from by Unstage.
  StatusOr<void*> Stage(const std::string& op, const Tensor& t, bool input, bool output,
                        std::vector<NcclStaged>& staged);
  // Copies staged outputs back (with `copy`) and frees every staging buffer.
  Status Unstage(std::vector<NcclStaged>& staged, bool copy);
  // Bounds an operation just queued on `s` by the watchdog, unless `s` is being captured.
  Status Track(const std::string& op, cudaStream_t s);
  // The first failure (OK while usable).
  Status Failure();
  // Records the failure of `op`: aborts the NCCL communicator, asks the store which ranks also
  // failed, and returns the Status every later call returns. `result`: NCCL's error, or
  // ncclSuccess for a timeout after `waited`.
  Status Fail(const std::string& op, ncclResult_t result, std::chrono::milliseconds waited);
  // NCCL's asynchronous error state: OK while fine or in progress, else Fail(op).
  Status PollAsync(const std::string& op);

 private:
  void WatchdogLoop();
  // The ranks other than this one that reported a failure under prefix_ within `grace`.
  std::vector<int> PeersThatFailed(std::chrono::milliseconds grace);

  Store& store_;
  const std::string prefix_;
  const int rank_;
  const int world_size_;
  const int device_;
  cudaStream_t stream_;
  const bool own_stream_;
  cudaStream_t copy_stream_ = nullptr;  // staged outputs go back through it
  float* scratch_ = nullptr;           // [1] device element for Barrier

  std::mutex nccl_mu_;  // guards comm_ and every NCCL call on it
  ncclComm_t comm_;

  std::mutex fail_mu_;   // one Fail at a time
  std::mutex state_mu_;  // guards broken_, watched_, stop_
  Status broken_;
  std::deque<std::shared_ptr<NcclOp>> watched_;
  bool stop_ = false;
  std::condition_variable wake_;
  std::thread watchdog_;

  struct PendingP2P {
    bool send;
    Tensor x;
    int peer;
  };
  std::vector<PendingP2P> pending_;       // issuing thread only
  std::shared_ptr<NcclOp> pending_batch_;  // the NcclOp the pending calls complete with
};

template <typename F>
Status NcclCommunicatorImpl::Issue(const std::string& op, F&& call) {
  ZT_RETURN_IF_ERROR(CheckUsable(op));
  ncclResult_t r;
  {
    std::lock_guard<std::mutex> l(nccl_mu_);
    if (comm_ == nullptr) return CheckUsable(op);
    r = call(comm_);
  }
  if (r == ncclInvalidArgument || r == ncclInvalidUsage) {
    return InvalidArgument(op + " on " + Describe() + ": NCCL refused the call (" + ncclGetErrorString(r) +
                           "): " + ncclGetLastError(nullptr));
  }
  if (r != ncclSuccess && r != ncclInProgress) return Fail(op, r, std::chrono::milliseconds(0));
  if (r == ncclInProgress) {
    // A non-blocking communicator may still be setting up connections for this call.
    auto start = NcclClock::now();
    for (;;) {
      ncclResult_t state = ncclSuccess;
      {
        std::lock_guard<std::mutex> l(nccl_mu_);
        if (comm_ == nullptr) return CheckUsable(op);
        ncclResult_t q = ncclCommGetAsyncError(comm_, &state);
        if (q != ncclSuccess) state = q;
      }
      if (state == ncclSuccess) break;
      if (state != ncclInProgress) return Fail(op, state, std::chrono::milliseconds(0));
      auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(NcclClock::now() - start);
      if (waited > timeout()) return Fail(op, ncclSuccess, waited);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  return OkStatus();
}

}  // namespace zt::comm
