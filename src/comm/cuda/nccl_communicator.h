// The NCCL communicator: collectives among GPUs, one rank per process and device, meeting through
// a ztrain Store (rank 0 publishes NCCL's unique id there). Two ways in:
//  - the Communicator interface (host-waiting, e.g. Engine::ReadParams): each operation runs on
//    the communicator's stream and returns a Work whose Wait polls the operation's event and
//    NCCL's asynchronous error until done or the timeout. Host tensors are staged through device
//    memory; device tensors must live on this communicator's device.
//  - Enqueue*: the device path of the CUDA collective kernels (src/kernels/cuda/collective.cu),
//    also inside a CUDA-graph capture: the operation is queued on the caller's stream and the call
//    returns without waiting. A watchdog thread bounds such operations by the timeout (outside a
//    capture; for a replayed graph, call Watch after launching it).
// Invariants: the NCCL communicator is non-blocking (config.blocking = 0), so no call here blocks
// the host beyond the timeout; an error or timeout aborts it (ncclCommAbort, which also stops NCCL
// kernels spinning on a dead peer) and every later call returns that first failure, which names
// the ranks concerned as far as they can be known. NVLink multicast (NVLS) stays off: creation
// sets NCCL_NVLS_ENABLE=0 unless it is already set (docs/comm.md says why it must stay off).
// Reductions run in the input dtype (NCCL's ncclSum / ncclAvg), unlike Gloo, which reduces 16-bit
// inputs in f32: see docs/comm.md.
#pragma once

#include <cuda_runtime_api.h>

#include <chrono>
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "comm/store.h"
#include "core/status.h"
#include "core/tensor.h"

namespace zt::comm {

class NcclCommunicator : public Communicator {
 public:
  // The device path: queue the operation on `stream` (ordered after the work already queued
  // there) and return without waiting. Tensors are device memory of this communicator's device.
  //   all_gather:     out [N*S] = every rank's in [S]; in may be out's slice of this rank.
  //   reduce_scatter: out [S] = this rank's slice of the reduction of in [N*S]; out may be in's
  //                   slice of this rank.
  //   all_reduce:     out = the reduction of in; out may be in.
  // Errors: bad arguments (InvalidArgument; the communicator stays usable), or the failure that
  // made the communicator unusable.
  virtual Status EnqueueAllGather(const Tensor& in, const Tensor& out, cudaStream_t stream) = 0;
  virtual Status EnqueueReduceScatter(const Tensor& in, const Tensor& out, ReduceOp op, cudaStream_t stream) = 0;
  virtual Status EnqueueAllReduce(const Tensor& in, const Tensor& out, ReduceOp op, cudaStream_t stream) = 0;

  // Bounds everything queued on `stream` so far by the timeout: the watchdog aborts the
  // communicator if it has not finished by then (`what` names it in the error). For work the
  // watchdog could not see, e.g. a replayed CUDA graph holding NCCL operations. Not during a
  // capture of `stream`.
  virtual Status Watch(cudaStream_t stream, const std::string& what) = 0;

  // OK while usable (also checks NCCL's asynchronous error); else the first failure.
  virtual Status Health() = 0;

  virtual cudaStream_t stream() const = 0;  // where the host-waiting operations run
  virtual int device() const = 0;           // the CUDA device of this rank
};

// Connects `world_size` ranks, each calling this with the CUDA device it uses current
// (cudaSetDevice), through `store` (which must outlive the communicator: failures are reported
// through it). Keys live under "nccl/<n>/", n counting the NCCL communicators this rank has
// created on this store, so ranks that create communicators in the same order share a store.
// `stream`: where host-waiting operations run (e.g. the backend's communication stream); null:
// the communicator creates its own non-blocking stream. Fails within about `timeout`:
// DeadlineExceeded naming the ranks that never joined, or the NCCL error of a failed setup.
StatusOr<std::unique_ptr<NcclCommunicator>> CreateNcclCommunicator(Store& store, int rank, int world_size,
                                                                   std::chrono::milliseconds timeout,
                                                                   cudaStream_t stream = nullptr);

}  // namespace zt::comm
