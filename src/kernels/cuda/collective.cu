// CUDA kernels of the collective family (all_gather, reduce_scatter, all_reduce): the NCCL
// operation is queued on the node's stream through NcclCommunicator's Enqueue* API and the kernel
// returns without waiting on the host, so a step can be captured into a CUDA graph (the executor
// already made this stream wait for the producers). Semantics as kernels/cpu/collective.cc: a
// one-rank program without a communicator copies its input. Invariant: nothing here blocks the
// host or allocates; a failed or timed-out collective surfaces as the communicator's Status on a
// later call (its watchdog aborts NCCL at the timeout).
#include <cuda_runtime.h>

#include <string>

#include "backend/cuda/cuda_backend.h"
#include "comm/cuda/nccl_communicator.h"
#include "kernels/cuda/registry.h"
#include "kernels/kernel.h"

namespace zt {
namespace {

// The NCCL communicator, or nullptr for a one-rank program (the collective is a copy).
StatusOr<comm::NcclCommunicator*> Nccl(const KernelContext& c, const char* op) {
  const bool one_rank = !c.attrs.Has("world_size") || c.attrs.GetInt("world_size") == 1;
  if (c.comm == nullptr && one_rank) return nullptr;
  if (c.comm == nullptr) {
    return FailedPrecondition(std::string(op) +
                              " needs a communicator: run data-parallel programs under `ztrain launch` (or mpirun/srun)");
  }
  if (c.attrs.Has("world_size") && c.attrs.GetInt("world_size") != c.comm->world_size()) {
    return FailedPrecondition(std::string(op) + " was compiled for " + std::to_string(c.attrs.GetInt("world_size")) +
                              " ranks, the job has " + std::to_string(c.comm->world_size()));
  }
  auto* nccl = dynamic_cast<comm::NcclCommunicator*>(c.comm);
  if (nccl == nullptr) {
    if (c.comm->world_size() == 1) return nullptr;  // nothing to exchange: a copy is exact
    return FailedPrecondition(std::string(op) + " on a CUDA device needs an NCCL communicator, the job has " +
                              c.comm->Describe());
  }
  return nccl;
}

comm::ReduceOp ParseOp(const std::string& s) { return s == "sum" ? comm::ReduceOp::kSum : comm::ReduceOp::kAvg; }

Status CopyInput(const KernelContext& c, cudaStream_t s) {
  const Tensor& in = c.inputs[0];
  const Tensor& out = c.outputs[0];
  if (out.data == in.data || in.nbytes() == 0) return OkStatus();
  cudaError_t e = cudaMemcpyAsync(out.data, in.data, in.nbytes(), cudaMemcpyDeviceToDevice, s);
  if (e != cudaSuccess) {
    return Internal(std::string("collective copy: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
  }
  return OkStatus();
}

Status AllGatherKernel(const KernelContext& c) {
  cudaStream_t s = CudaStreamOf(c.stream);
  ZT_ASSIGN_OR_RETURN(comm::NcclCommunicator * nccl, Nccl(c, "all_gather"));
  if (nccl == nullptr) return CopyInput(c, s);
  return nccl->EnqueueAllGather(c.inputs[0], c.outputs[0], s);
}

Status ReduceScatterKernel(const KernelContext& c) {
  cudaStream_t s = CudaStreamOf(c.stream);
  ZT_ASSIGN_OR_RETURN(comm::NcclCommunicator * nccl, Nccl(c, "reduce_scatter"));
  if (nccl == nullptr) return CopyInput(c, s);
  return nccl->EnqueueReduceScatter(c.inputs[0], c.outputs[0], ParseOp(c.attrs.GetString("op")), s);
}

Status AllReduceKernel(const KernelContext& c) {
  cudaStream_t s = CudaStreamOf(c.stream);
  ZT_ASSIGN_OR_RETURN(comm::NcclCommunicator * nccl, Nccl(c, "all_reduce"));
  if (nccl == nullptr) return CopyInput(c, s);
  // Out of place: NCCL reads the input and writes the output, no copy first.
  return nccl->EnqueueAllReduce(c.inputs[0], c.outputs[0], ParseOp(c.attrs.GetString("op")), s);
}

}  // namespace

void RegisterCollectiveCudaKernels(KernelRegistry& r) {
  r.Register("all_gather", DeviceKind::kCUDA, AllGatherKernel);
  r.Register("reduce_scatter", DeviceKind::kCUDA, ReduceScatterKernel);
  r.Register("all_reduce", DeviceKind::kCUDA, AllReduceKernel);
}

}  // namespace zt
