// Worker bootstrap: who am I in the job, and how do I reach the job's rendezvous store.
// DetectWorkerEnv reads the variables a launcher sets — `ztrain launch` (torchrun-style RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE plus ZT_STORE), Open MPI, MPICH/PMI (Hydra) or Slurm —
// and with none of them set the process is rank 0 of 1. ConnectJob then connects to the store:
// the one in ZT_STORE, or (mpirun/srun, no ZT_STORE) one that rank 0 hosts at
// MASTER_ADDR:MASTER_PORT. docs/launch.md lists every variable.
// Invariants: a returned WorkerEnv satisfies 0 <= rank < world_size, 0 <= local_rank <
// local_world_size <= world_size; malformed or inconsistent values are errors naming the
// variable, never guesses.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "comm/socket.h"
#include "comm/store.h"
#include "core/status.h"

namespace zt::comm {
class TcpStoreServer;
}

namespace zt::launch {

// Which launcher's variables gave the rank and world size. When several are present the first in
// this order wins (an agent may itself run under srun or mpirun, and its workers must follow it).
enum class Launcher {
  kNone,     // nothing set: a single process
  kAgent,    // RANK/WORLD_SIZE with ZT_STORE: `ztrain launch`
  kEnv,      // RANK/WORLD_SIZE without ZT_STORE (torchrun or set by hand)
  kOpenMpi,  // OMPI_COMM_WORLD_*
  kMpich,    // PMI_RANK/PMI_SIZE, MPI_LOCALRANKID/MPI_LOCALNRANKS (MPICH, Intel MPI: Hydra)
  kSlurm,    // SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID (srun)
};
const char* LauncherName(Launcher l);

struct WorkerEnv {
  Launcher launcher = Launcher::kNone;
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr;              // MASTER_ADDR; empty when not set
  int master_port = 0;                  // MASTER_PORT; 0 when not set
  std::optional<comm::HostPort> store;  // ZT_STORE
  std::string token;                    // ZT_STORE_TOKEN; empty when not set
  int restart_count = 0;                // ZT_RESTART_COUNT: which gang of the job this is (0: the first)

  std::string Describe() const;  // "rank 1/4 (local 1/2) from Open MPI"
};

// Returns the value of an environment variable, or nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

StatusOr<WorkerEnv> DetectWorkerEnv();                      // the process environment
StatusOr<WorkerEnv> DetectWorkerEnv(const EnvLookup& env);  // for tests

// A worker's connection to the job. On rank 0 of an mpirun/srun job `server` hosts the store;
// it must outlive every rank's use of it, so every rank calls Finish() before exiting.
struct JobConnection {
  JobConnection();
  JobConnection(JobConnection&&) noexcept;
  JobConnection& operator=(JobConnection&&) noexcept;
  ~JobConnection();

  std::unique_ptr<comm::TcpStoreServer> server;  // set only where this process hosts the store
  std::unique_ptr<comm::Store> store;            // timeout: ZT_COMM_TIMEOUT_S
  int rank = 0;
  int world_size = 1;
  int restart_count = 0;  // Finish() counts under this gang's own keys, not an earlier gang's

  // Shutdown barrier: returns once every rank has called Finish() (on the store's host; other
  // ranks return at once after checking in), or DeadlineExceeded after the store's timeout.
  Status Finish();
};

// World size 1 without ZT_STORE: an in-process store. ZT_STORE: a client of that store.
// Otherwise rank 0 starts a TCP store on MASTER_ADDR:MASTER_PORT (listening on ZT_STORE_BIND
// when that is set, else on MASTER_ADDR) and every rank connects to it. A token
// (ZT_STORE_TOKEN) is required whenever a TCP store is involved.
StatusOr<JobConnection> ConnectJob(const WorkerEnv& env);

}  // namespace zt::launch
