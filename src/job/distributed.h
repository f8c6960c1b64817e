// Joining the job this process belongs to: the rank and world size from the launcher's
// environment (`ztrain launch`, mpirun, srun, or none for a single process), the rendezvous
// store, and, for more than one rank, a Gloo communicator over it. Every step of the rendezvous
// is bounded by ZT_COMM_TIMEOUT_S.
#pragma once

#include <memory>

#include "comm/communicator.h"
#include "launch/worker_env.h"

namespace zt::job {

struct JobMembership {
  launch::WorkerEnv env;
  launch::JobConnection connection;
  std::unique_ptr<comm::Communicator> comm;  // null for a single process
  int rank() const { return env.rank; }
  int world_size() const { return env.world_size; }
};

StatusOr<JobMembership> JoinJob();

}  // namespace zt::job
