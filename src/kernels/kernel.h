// Kernel registry: maps (op name, device kind) to the function that runs one node of that op.
// The executor calls kernels through this table only. Each op family registers its CPU kernels in
// kernels/cpu/<family>.cc (listed once in kernels/cpu/all_kernels.cc); CUDA kernels plug in the
// same way. Invariant: a kernel reads only its inputs, writes only its outputs and the workspace it
// was given, and allocates nothing itself.
#pragma once

#include <map>
#include <span>
#include <string>
#include <utility>

#include "backend/backend.h"
#include "core/status.h"
#include "core/tensor.h"
#include "ir/attr.h"

namespace zt {

namespace comm {
class Communicator;  // communication kernels reach it through the context
}

struct KernelContext {
  const ir::AttrMap& attrs;
  std::span<const Tensor> inputs;
  std::span<const Tensor> outputs;
  Tensor workspace;  // u8[bytes the op's workspace rule asked for]
  Backend& backend;
  Stream& stream;
  comm::Communicator* comm = nullptr;
};

// A kernel returns an error only for failures from outside (a communication timeout, say);
// malformed nodes are rejected before execution.
using KernelFn = Status (*)(const KernelContext& ctx);

class KernelRegistry {
 public:
  // The process-wide registry, with every built-in kernel registered on first use.
  static KernelRegistry& Global();

  void Register(const std::string& op, DeviceKind device, KernelFn fn);  // CHECKs uniqueness
  KernelFn Find(const std::string& op, DeviceKind device) const;         // nullptr if none

 private:
  std::map<std::pair<std::string, DeviceKind>, KernelFn> kernels_;
};

// Defined in kernels/cpu/all_kernels.cc.
void RegisterCpuKernels(KernelRegistry& r);

}  // namespace zt
