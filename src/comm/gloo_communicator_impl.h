// GlooCommunicator: the class behind CreateGlooCommunicator (internal to comm/; use
// gloo_communicator.h). Collectives run synchronously inside the call on the calling thread, so
// they start in call order on every rank; Send/Recv are posted in the call and completed in
// Work::Wait, so a rank may post both directions of an exchange before waiting. Invariant: once
// Fail() has run, broken_ holds the first failure, every peer connection is closed and every
// later call returns that failure.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gloo/context.h>
#include <gloo/transport/device.h>
#include <gloo/transport/unbound_buffer.h>

#include "comm/communicator.h"
#include "comm/store.h"

namespace zt::comm {

class GlooCommunicator final : public Communicator {
 public:
  using Clock = std::chrono::steady_clock;

  GlooCommunicator(Store& store, std::string prefix, int rank, int world_size,
                   std::shared_ptr<gloo::transport::Device> device, std::shared_ptr<gloo::Context> context,
                   std::vector<std::string> hosts, std::chrono::milliseconds timeout);
  ~GlooCommunicator() override;

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

  // OK while usable; else the first failure, prefixed with `op`.
  Status CheckUsable(const char* op);
  // Records a transport failure of `op` (with `peer`, or -1 when gloo did not say): finds the
  // ranks that disconnected (broken connections, peers' reports in the store), reports this
  // rank's finding, closes every connection, and returns the Status every later call returns.
  // `waited` is the wait that timed out, if one did (default: the communicator's timeout).
  Status Fail(const std::string& op, int peer, const std::string& gloo_message,
              std::chrono::milliseconds waited = std::chrono::milliseconds(-1));

  gloo::Context& context() { return *context_; }
  static Clock::time_point DeadlineAfter(std::chrono::milliseconds timeout);
  // The remaining time to `deadline`, at least 1 ms (gloo reads 0 as "no timeout").
  static std::chrono::milliseconds Remaining(Clock::time_point deadline);

 private:
  // Ring reduce-scatter of `in` (`valid` elements of `dtype`, seen as world_size chunks of
  // `chunk` elements, zero-padded past `valid`) into `acc` [chunk]: this rank's chunk, summed in
  // f32 in the fixed order rank+1, rank+2, ..., rank. `tmp` [chunk] receives.
  Status RingReduceScatter(const std::string& op, const void* in, DType dtype, int64_t valid, int64_t chunk,
                           float* acc, float* tmp, uint64_t slot, Clock::time_point deadline);
  // Ring all-gather in place: `base` holds `total` elements of `elem_size` bytes in world_size
  // chunks of `chunk` elements (the last ones short or empty); this rank's chunk is filled.
  Status RingAllGather(const std::string& op, void* base, size_t elem_size, int64_t total, int64_t chunk,
                       uint64_t slot, Clock::time_point deadline);
  // Ranks whose connection to this rank is broken (gloo flags a pair when its socket closes).
  std::vector<int> BrokenPeers();
  uint64_t NextSlot(uint8_t prefix);
  std::string RankName(int r) const;

  Store& store_;
  const std::string prefix_;
  const int rank_;
  const int world_size_;
  const std::vector<std::string> hosts_;  // [world_size] host of each rank, from rendezvous
  uint32_t seq_ = 0;                      // collectives issued; the same on every rank

  std::shared_ptr<gloo::transport::Device> device_;
  std::shared_ptr<gloo::Context> context_;
  char probe_byte_ = 0;
  std::vector<std::unique_ptr<gloo::transport::UnboundBuffer>> probes_;  // destroyed before context_

  std::mutex mu_;  // guards broken_ (Work::Wait may run on another thread)
  Status broken_;
};

}  // namespace zt::comm
