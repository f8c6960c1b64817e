// Executor: runs a Program's nodes in schedule order on a Backend, each through the kernel
// registered for its op and device. Memory comes from the static plan (one arena per category,
// allocated once) or, in dynamic mode (ZT_EXEC_MEMORY=dynamic), per value at its definition and
// freed after its last use, which checks the plan against the allocator.
// Streams: a node runs on the stream its `stream` field names; before it, the executor makes that
// stream wait for events recorded after every producer and dependency on another stream. On the
// CPU backend streams are in-order and events trivial.
// Invariant: persistent values (params, states, inputs) keep their memory and contents across
// steps; intermediates are valid only during the step (graph outputs until the next step).
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "kernels/kernel.h"
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

  Backend& backend() { return backend_; }
  const Program& program() const { return program_; }
  ExecMemoryMode memory_mode() const { return mode_; }

 private:
  Executor(Program& program, Backend& backend, ExecMemoryMode mode, comm::Communicator* comm, bool poison);
  Status Prepare();
  Status AllocateRoot(const ir::Value* root);
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

  Program& program_;
  Backend& backend_;
  ExecMemoryMode mode_;
  comm::Communicator* comm_;
  bool poison_;
  std::vector<NodeExec> steps_;
  std::map<const ir::Value*, passes::LiveRange> ranges_;
  // Arena mode: one buffer per category. Dynamic mode: one buffer per live root.
  std::vector<Buffer> arenas_;
  std::map<const ir::Value*, Buffer> dynamic_;
  std::vector<const ir::Value*> kept_;  // dynamic mode: roots alive until the next step
  std::map<const ir::Node*, std::unique_ptr<Event>> events_;
};

}  // namespace zt
