// Executor: runs a Program's nodes in schedule order on a Backend, each through the kernel
// registered for its op and device. Memory comes from the static plan (an arena per category for
// persistent values and one transient arena, allocated once; passes/memory_planner.h) or, in
// dynamic mode (ZT_EXEC_MEMORY=dynamic), per value at its definition and freed after its last use,
// which checks the plan against the allocator. Phase fences (SetPhaseFence) let host-side work
// (checkpoint snapshot copies) overlap a step up to the first node of a phase.
// Streams: a node runs on the stream its `stream` field names; before it, the executor makes that
// stream wait for events recorded after every producer and dependency on another stream. A Run
// starts by making every other stream it uses wait for the compute stream (so they see Writes and
// earlier Runs) and ends by making the compute stream wait for them (so Reads see everything).
// On the CPU backend streams are in-order and events trivial.
// CUDA graphs (a CUDA backend in arena mode, ZT_CUDA_GRAPHS on): per PhaseMask, the first Run is
// eager (kernels may create plans and handles), the second is captured on the compute stream
// into a CUDA graph (other streams join through the same events) and launched, later Runs launch
// the graph. Writes of small inputs go through fixed pinned buffers into the inputs' fixed arena
// addresses, so a replay reads the new data. A failed capture logs one warning and that mask runs
// eagerly from then on. Nothing inside a Run synchronizes the host; Read does (the compute stream).
// Invariant: persistent values (params, states, inputs) keep their memory and contents across
// steps; intermediates are valid only during the step (graph outputs until the next step).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "kernels/kernel.h"
#include "runtime/op_profiler.h"
#include "runtime/program.h"

namespace zt {

enum class ExecMemoryMode { kArena, kDynamic };

struct ExecutorOptions {
  // Defaults to ZT_EXEC_MEMORY.
  std::optional<ExecMemoryMode> memory;
  comm::Communicator* comm = nullptr;
  // Fill all memory with 0xFF bytes (NaN as floats) when allocated, so a kernel that leaves an
  // output element unwritten is caught by comparisons (tests).
  bool poison = false;
  // Capture each PhaseMask's step into a CUDA graph (CUDA backend, arena mode only). Defaults to
  // ZT_CUDA_GRAPHS.
  std::optional<bool> cuda_graphs;
};

// How Runs were executed (for tests and the profiler).
struct ExecutorStats {
  int64_t eager_runs = 0;        // node by node
  int64_t graph_captures = 0;    // graphs captured and instantiated
  int64_t graph_launches = 0;    // Runs that launched a captured graph (the capturing Run too)
  int64_t capture_failures = 0;  // masks that fell back to eager execution
  int64_t memory_reuse_waits = 0;  // cross-stream waits added where the plan reuses bytes
};

// Which phases a run executes (gradient accumulation runs forward+backward several times before
// one optimizer phase).
struct PhaseMask {
  bool forward = true, backward = true, optimizer = true;
  bool Has(ir::Phase p) const;
  static PhaseMask All() { return {}; }
};

class Executor {
 public:
  static StatusOr<std::unique_ptr<Executor>> Create(Program& program, Backend& backend,
                                                    const ExecutorOptions& options = {});
  ~Executor();

  // Runs one step (the nodes of the given phases, in order). Kernel errors come back with the
  // node named.
  Status Run(PhaseMask phases = PhaseMask::All());

  // The memory of a value. Persistent values: always. Intermediates: arena mode after a step;
  // dynamic mode only graph outputs, loss and gradients, until the next step.
  Tensor tensor(const ir::Value* v) const;
  Tensor tensor(const std::string& name) const;
  // Host <-> backend copies of a whole value (bytes must equal the value's size).
  Status Write(const ir::Value* v, const void* host, size_t bytes);
  Status Read(const ir::Value* v, void* host, size_t bytes) const;
  // Queues a copy of bytes [offset, offset + bytes) of a persistent value into host memory on
  // `stream`, without waiting (asynchronous into Backend::AllocateHost memory on CUDA). The
  // caller orders the stream after the writes it must see and waits before using the bytes.
  Status ReadAsync(const ir::Value* v, size_t offset, void* host, size_t bytes, Stream& stream) const;

  // Every later Run makes each stream wait for `fence` (StreamWaitExternal, so CUDA graphs replay
  // the wait) before its first node of `phase`; null removes it. The engine fences the optimizer
  // phase behind the asynchronous checkpoint snapshot copies.
  void SetPhaseFence(ir::Phase phase, Event* fence);

  Backend& backend() { return backend_; }
  const Program& program() const { return program_; }
  ExecMemoryMode memory_mode() const { return mode_; }
  // Whether Runs are captured into CUDA graphs (see the top of this file).
  bool cuda_graphs() const;
  const ExecutorStats& stats() const { return stats_; }
  // ZT_PROFILE=1: the per-op table (op_profiler.h); null otherwise.
  const OpProfiler* profiler() const { return profiler_.get(); }

  // Ops whose kernels cannot be captured into a CUDA graph: a program holding one runs eagerly.
  static bool IsUncapturable(const std::string& op);

 private:
  Executor(Program& program, Backend& backend, ExecMemoryMode mode, comm::Communicator* comm, bool poison);
  Status Prepare();
  void AddMemoryReuseWaits();
  Status RunNodes(PhaseMask phases);
  Status CaptureAndLaunch(PhaseMask phases);
  Status AllocateRoot(const ir::Value* root, Stream& stream);
  void FreeRoot(const ir::Value* root);
  void* Address(const ir::Value* v) const;

  struct NodeExec {
    const ir::Node* node;
    KernelFn kernel;
    size_t workspace_bytes;
    std::vector<const ir::Value*> frees_after;  // dynamic mode: roots whose last use is here
    std::vector<const ir::Node*> waits;          // producers/deps on another stream
    bool record_event = false;
  };
  // Makes `s` wait for `p` when `p` runs on another stream (once); whether a wait was added.
  static bool AddWait(NodeExec& s, const ir::Node* p);

  Program& program_;
  Backend& backend_;
  ExecMemoryMode mode_;
  comm::Communicator* comm_;
  bool poison_;
  std::vector<NodeExec> steps_;
  std::unique_ptr<OpProfiler> profiler_;
  std::map<const ir::Value*, passes::LiveRange> ranges_;
  // Arena mode: one buffer per category. Dynamic mode: one buffer per live root.
  std::vector<Buffer> arenas_;
  std::map<const ir::Value*, Buffer> dynamic_;
  std::vector<const ir::Value*> kept_;  // dynamic mode: roots alive until the next step
  std::map<const ir::Node*, std::unique_ptr<Event>> events_;
  std::vector<StreamKind> side_streams_;  // streams other than compute that some node uses
  std::unique_ptr<Event> fork_event_;
  std::map<ir::Phase, Event*> phase_fences_;
  std::vector<std::unique_ptr<Event>> join_events_;  // one per side stream
  ExecutorStats stats_;
  // CUDA-only state (graphs per PhaseMask, pinned staging of Writes); empty elsewhere.
  struct DeviceState;
  std::unique_ptr<DeviceState> device_;
};

}  // namespace zt
