// Communicator: collectives among the ranks of a job. Every operation returns a Work to wait on;
// waiting has a timeout (the communicator's, from ZT_COMM_TIMEOUT_S, unless given) and fails
// with an error that names the rank(s) concerned when a peer dies or stalls — it never hangs.
// Buffers are memory of the communicator's backend (host memory for Gloo, device memory for NCCL).
// Invariants: results are identical on every rank; reductions are deterministic for a fixed world
// size (same inputs, same bits); 16-bit floating inputs are reduced in f32 and rounded once.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/status.h"
#include "core/tensor.h"

namespace zt::comm {

enum class ReduceOp { kSum, kAvg };
const char* ReduceOpName(ReduceOp op);

class Work {
 public:
  virtual ~Work() = default;
  virtual Status Wait(std::chrono::milliseconds timeout) = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string Describe() const = 0;  // e.g. "gloo rank 1/4"

  // out [N * S] = concatenation over ranks of in [S] (in may alias out's slice of this rank).
  virtual std::unique_ptr<Work> AllGather(const Tensor& in, const Tensor& out) = 0;
  // out [S] = this rank's slice of the reduction over ranks of in [N * S].
  virtual std::unique_ptr<Work> ReduceScatter(const Tensor& in, const Tensor& out, ReduceOp op) = 0;
  // x = reduction over ranks of x, in place.
  virtual std::unique_ptr<Work> AllReduce(const Tensor& x, ReduceOp op) = 0;
  // x = root's x, in place.
  virtual std::unique_ptr<Work> Broadcast(const Tensor& x, int root) = 0;
  virtual std::unique_ptr<Work> Send(const Tensor& x, int dst, int tag) = 0;
  virtual std::unique_ptr<Work> Recv(const Tensor& x, int src, int tag) = 0;
  virtual std::unique_ptr<Work> Barrier() = 0;

  std::chrono::milliseconds timeout() const { return timeout_; }
  void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }
  // Waits on `w` with the communicator's timeout.
  Status Wait(std::unique_ptr<Work> w) { return w->Wait(timeout_); }

 protected:
  std::chrono::milliseconds timeout_{300000};
};

}  // namespace zt::comm
