// ThreadCommunicator: the ranks of a job as threads of one process, exchanging data through shared
// memory. For tests of data-parallel programs (many ranks in one fast process) and as the
// reference the networked communicators are checked against.
// Invariant: reductions add the ranks' contributions in rank order in f32 (16-bit inputs are
// widened, then rounded once), so results are deterministic and identical on every rank.
#pragma once

#include <memory>
#include <vector>

#include "comm/communicator.h"

namespace zt::comm {

struct ThreadGroupState;

// Makes the world_size communicators of one group; give communicator r to the thread of rank r.
std::vector<std::unique_ptr<Communicator>> CreateThreadGroup(int world_size,
                                                             std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace zt::comm
