// The launcher agent behind `ztrain launch`: one per node. It hosts the job's rendezvous store
// (node 0), starts one worker process per slot with the torchrun-style environment (RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, ZT_STORE, ZT_STORE_TOKEN)
// plus ZT_RESTART_COUNT and ZT_SHM_PREFIX (the host-memory checkpoint tier), forwards its output
// line by line with a "[rank N] " prefix, forwards SIGINT/SIGTERM, and stops the whole job when
// any worker fails, or, with --max-restarts R, stops and restarts the whole gang up to R times.
// docs/launch.md is the user's guide.
// Invariants: the agent returns only after every worker it started has been reaped; it exits 0
// only when every worker of the last gang exited 0; a failure names the rank, its pid and how it
// ended. A gang starts only after every worker of the previous one was reaped. Only a worker's
// failure causes a restart, never a signal to the agent. Host-memory segments under the agent's
// own prefix are unlinked when it exits (by its guard process if it is killed); segments under a
// user-given ZT_SHM_PREFIX are kept.
#pragma once

#include <string>
#include <vector>

#include "comm/socket.h"
#include "core/status.h"

namespace zt::launch {

struct AgentOptions {
  int nproc = 0;                  // workers on this node; 0 with a hostfile: this node's slots
  std::string hostfile;           // multi-node (with node_rank and master)
  int node_rank = -1;             // -1: not given
  std::string master;             // "host:port" of the store on node 0; empty: ephemeral port here
  int max_restarts = 0;           // gang restarts after a worker failure (single node only)
  std::string program;            // empty: this ztrain binary (/proc/self/exe)
  std::vector<std::string> args;  // after `--`: the ztrain subcommand and its arguments
  double grace_period_s = 10;     // SIGTERM -> SIGKILL when stopping workers
  bool prefix_output = true;      // "[rank N] " before each worker output line
  bool host_tier = true;          // false (--no-host-tier): the workers get no ZT_SHM_PREFIX
};

// What this node's agent will do, derived from AgentOptions and the environment.
struct AgentPlan {
  int node_rank = 0;
  int num_nodes = 1;
  int nproc = 1;       // local workers
  int first_rank = 0;  // global rank of local worker 0
  int world_size = 1;
  bool hosts_store = true;        // node 0 runs the TcpStoreServer
  std::string bind_host;          // where that server listens
  comm::HostPort store;           // where workers (and other agents) connect; port 0: ephemeral
  std::string token;              // ZT_STORE_TOKEN, or a fresh one on a single node
  std::string program;            // absolute path, or as given when it contains '/'
  std::vector<std::string> argv;  // argv[0] included
  int max_restarts = 0;
  std::string shm_prefix;           // the workers' ZT_SHM_PREFIX; empty: no host-memory tier
  bool keep_host_segments = false;  // a user-given ZT_SHM_PREFIX: its segments outlive the agent
};

// Validates the options (errors name the option and say what to give instead) and reads the
// hostfile, ZT_STORE_TOKEN, ZT_STORE_BIND and ZT_SHM_PREFIX (unset: a fresh
// ckpt::DefaultShmPrefix(getpid(), random id)).
StatusOr<AgentPlan> PlanAgent(const AgentOptions& options);

// Runs the agent to completion: returns the exit code (0: every worker exited 0; 1: a worker,
// another node or the store failed, or the options were bad; 128+N: the agent got signal N).
// Messages go to stderr, prefixed "ztrain launch: ".
int RunAgent(const AgentOptions& options);

}  // namespace zt::launch
