// The Gloo communicator: collectives among CPU processes (or threads) over TCP, rendezvousing
// through a ztrain Store. Operations take host tensors; AllReduce/ReduceScatter take f32, bf16 or
// f16 (16-bit inputs are reduced in f32 and rounded once), AllGather/Broadcast/Send/Recv take any
// dtype. Invariants (see communicator.h): reductions are deterministic for a fixed world size and
// bit-identical on every rank (ring reduce-scatter in a fixed order, docs/comm.md); AllReduce on
// N*S elements equals, bit for bit, ReduceScatter's slices concatenated; nothing gloo throws
// escapes: every failure is a Status, and one that names a peer names its rank. After a transport
// failure or timeout the communicator is unusable and says so on every later call.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "comm/store.h"
#include "core/status.h"

namespace zt::comm {

// Connects `world_size` ranks through `store` (which must outlive the communicator: failures are
// reported through it). Keys live under "gloo/<n>/", n counting the communicators this rank has
// created on this store, so ranks that create communicators in the same order share a store
// safely (distinct groups: give each a PrefixStore). `interface_or_host` is this rank's address
// or network interface name (e.g. "eth0") that peers can reach. Fails within about `timeout`
// with DeadlineExceeded naming the ranks that never joined, or Unavailable naming the peer that
// could not be connected. Also ignores SIGPIPE if it has its default action (a peer that dies
// must become a Status, not kill this process).
StatusOr<std::unique_ptr<Communicator>> CreateGlooCommunicator(
    Store& store, int rank, int world_size, std::chrono::milliseconds timeout,
    const std::string& interface_or_host = "127.0.0.1");

}  // namespace zt::comm
