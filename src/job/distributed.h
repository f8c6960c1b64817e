// Joining the job this process belongs to: the rank and world size from the launcher's
// environment (`ztrain launch`, mpirun, srun, or none for a single process), the rendezvous
// store, and, for more than one rank and once the device is chosen, the communicator over it:
// Gloo for the CPU backend, NCCL for CUDA. Every step of the rendezvous is bounded by
// ZT_COMM_TIMEOUT_S.
#pragma once

#include <memory>

#include "backend/backend.h"
#include "comm/communicator.h"
#include "launch/worker_env.h"

namespace zt::job {

struct JobMembership {
  launch::WorkerEnv env;
  launch::JobConnection connection;
  std::unique_ptr<comm::Communicator> comm;  // set by CreateCommunicator; null for a single process
  int rank() const { return env.rank; }
  int world_size() const { return env.world_size; }
};

// The environment and the store (no communicator yet: that needs the backend).
StatusOr<JobMembership> JoinJob();

// Connects this rank to its peers (world size > 1; a single process gets none) with the
// communicator that fits `backend`: Gloo over TCP for the CPU, NCCL on the backend's
// communication stream for CUDA. Every rank calls it once, after JoinJob.
Status CreateCommunicator(JobMembership& m, Backend& backend);

}  // namespace zt::job
