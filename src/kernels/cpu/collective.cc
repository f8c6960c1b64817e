// Collective kernels through comm::Communicator.
#include "kernels/cpu/collective.h"

#include <cstring>

#include "comm/communicator.h"
#include "kernels/kernel.h"

namespace zt {
namespace {

// The communicator, or nullptr for a one-rank program without one (the collective is a copy).
StatusOr<comm::Communicator*> Comm(const KernelContext& c, const char* op) {
  bool one_rank = !c.attrs.Has("world_size") || c.attrs.GetInt("world_size") == 1;
  if (c.comm == nullptr && one_rank) return nullptr;
  if (c.comm == nullptr) {
    return FailedPrecondition(std::string(op) +
                              " needs a communicator: run data-parallel programs under `ztrain launch` (or mpirun/srun)");
  }
  if (c.attrs.Has("world_size") && c.attrs.GetInt("world_size") != c.comm->world_size()) {
    return FailedPrecondition(std::string(op) + " was compiled for " + std::to_string(c.attrs.GetInt("world_size")) +
                              " ranks, the job has " + std::to_string(c.comm->world_size()));
  }
  return c.comm;
}

comm::ReduceOp ParseOp(const std::string& s) { return s == "sum" ? comm::ReduceOp::kSum : comm::ReduceOp::kAvg; }

void CopyInput(const KernelContext& c) {
  if (c.outputs[0].data != c.inputs[0].data) std::memcpy(c.outputs[0].data, c.inputs[0].data, c.inputs[0].nbytes());
}

Status AllGatherKernel(const KernelContext& c) {
  ZT_ASSIGN_OR_RETURN(comm::Communicator * comm, Comm(c, "all_gather"));
  if (comm == nullptr) {
    CopyInput(c);
    return OkStatus();
  }
  return comm->Wait(comm->AllGather(c.inputs[0], c.outputs[0]));
}

Status ReduceScatterKernel(const KernelContext& c) {
  ZT_ASSIGN_OR_RETURN(comm::Communicator * comm, Comm(c, "reduce_scatter"));
  if (comm == nullptr) {
    CopyInput(c);
    return OkStatus();
  }
  return comm->Wait(comm->ReduceScatter(c.inputs[0], c.outputs[0], ParseOp(c.attrs.GetString("op"))));
}

Status AllReduceKernel(const KernelContext& c) {
  ZT_ASSIGN_OR_RETURN(comm::Communicator * comm, Comm(c, "all_reduce"));
  CopyInput(c);
  if (comm == nullptr) return OkStatus();
  return comm->Wait(comm->AllReduce(c.outputs[0], ParseOp(c.attrs.GetString("op"))));
}

}  // namespace

void RegisterCollectiveCpuKernels(KernelRegistry& r) {
  r.Register("all_gather", DeviceKind::kCPU, AllGatherKernel);
  r.Register("reduce_scatter", DeviceKind::kCPU, ReduceScatterKernel);
  r.Register("all_reduce", DeviceKind::kCPU, AllReduceKernel);
}

}  // namespace zt
