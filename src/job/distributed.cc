// Job membership: environment, store, communicator (Gloo on the CPU, NCCL on CUDA).
#include "job/distributed.h"

#include <unistd.h>

#include "comm/gloo_communicator.h"
#include "comm/prefix_store.h"
#include "core/logging.h"
#include "core/settings.h"
#ifdef ZT_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#include "comm/cuda/nccl_communicator.h"
#endif

namespace zt::job {

StatusOr<JobMembership> JoinJob() {
  JobMembership m;
  ZT_ASSIGN_OR_RETURN(m.env, launch::DetectWorkerEnv());
  if (m.env.world_size > 1) SetLogPrefix("rank " + std::to_string(m.env.rank));
  ZT_ASSIGN_OR_RETURN(m.connection, launch::ConnectJob(m.env));
  // A restarted gang (ztrain launch --max-restarts) meets on the same store: each attempt keeps
  // to its own keys, so nothing of a dead attempt is mistaken for this one's.
  ZT_ASSIGN_OR_RETURN(int64_t attempt, settings::GetInt("ZT_RESTART_COUNT"));
  if (attempt < 0) return InvalidArgument("ZT_RESTART_COUNT must be >= 0, got " + std::to_string(attempt));
  if (attempt > 0) {
    std::shared_ptr<comm::Store> base(std::move(m.connection.store));
    m.connection.store = std::make_unique<comm::PrefixStore>(base, "attempt-" + std::to_string(attempt));
  }
  return m;
}

Status CreateCommunicator(JobMembership& m, Backend& backend) {
  if (m.env.world_size <= 1 || m.comm != nullptr) return OkStatus();
  const std::string what = "connecting rank " + std::to_string(m.env.rank) + " to its peers";
  if (backend.kind() == DeviceKind::kCUDA) {
#ifdef ZT_WITH_CUDA
    // NCCL binds the communicator to the current device: the backend's.
    auto& cuda = static_cast<CudaBackend&>(backend);
    if (cudaError_t e = cudaSetDevice(cuda.device()); e != cudaSuccess) {
      return Internal(what + ": cudaSetDevice(" + std::to_string(cuda.device()) + "): " + cudaGetErrorString(e));
    }
    auto c = comm::CreateNcclCommunicator(*m.connection.store, m.env.rank, m.env.world_size, settings::CommTimeout(),
                                          CudaStreamOf(backend.stream(StreamKind::kComm)));
    if (!c.ok()) return c.status().WithContext(what);
    m.comm = std::move(*c);
    return OkStatus();
#else
    return FailedPrecondition(what + ": a CUDA backend without CUDA support built in");
#endif
  }
  // Ranks of one node talk over loopback; across nodes, over this host's name.
  std::string host = "127.0.0.1";
  if (m.env.local_world_size < m.env.world_size) {
    char name[256] = {0};
    if (gethostname(name, sizeof(name) - 1) == 0) host = name;
  }
  auto c = comm::CreateGlooCommunicator(*m.connection.store, m.env.rank, m.env.world_size, settings::CommTimeout(), host);
  if (!c.ok()) return c.status().WithContext(what);
  m.comm = std::move(*c);
  return OkStatus();
}

}  // namespace zt::job
