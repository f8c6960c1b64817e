// Job membership: environment, store, communicator.
#include "job/distributed.h"

#include <unistd.h>

#include "comm/gloo_communicator.h"
#include "core/logging.h"
#include "core/settings.h"

namespace zt::job {

StatusOr<JobMembership> JoinJob() {
  JobMembership m;
  ZT_ASSIGN_OR_RETURN(m.env, launch::DetectWorkerEnv());
  if (m.env.world_size > 1) SetLogPrefix("rank " + std::to_string(m.env.rank));
  ZT_ASSIGN_OR_RETURN(m.connection, launch::ConnectJob(m.env));
  if (m.env.world_size > 1) {
    // Ranks of one node talk over loopback; across nodes, over this host's name.
    std::string host = "127.0.0.1";
    if (m.env.local_world_size < m.env.world_size) {
      char name[256] = {0};
      if (gethostname(name, sizeof(name) - 1) == 0) host = name;
    }
    auto c = comm::CreateGlooCommunicator(*m.connection.store, m.env.rank, m.env.world_size, settings::CommTimeout(), host);
    if (!c.ok()) return c.status().WithContext("connecting rank " + std::to_string(m.env.rank) + " to its peers");
    m.comm = std::move(*c);
  }
  return m;
}

}  // namespace zt::job
