// The launch subcommand: option parsing only; launch::RunAgent does the work.
#include "cli/launch_cmd.h"

#include <CLI/CLI.hpp>
#include <memory>

#include "launch/agent.h"

namespace zt::cli {

void RegisterLaunchCommand(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<launch::AgentOptions>();
  auto no_prefix = std::make_shared<bool>(false);
  auto no_host_tier = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "launch", "start this node's workers: `ztrain launch --nproc 2 -- train --config run.json` (docs/launch.md)");
  cmd->add_option("--nproc", o->nproc, "workers to start on this node (with --hostfile: this node's slots)");
  cmd->add_option("--hostfile", o->hostfile, "multi-node job: lines 'hostname slots=N', one per node");
  cmd->add_option("--node-rank", o->node_rank, "this node's line in the hostfile, from 0");
  cmd->add_option("--master", o->master,
                  "HOST:PORT of the job's store, hosted by node 0's agent (default: 127.0.0.1, a free port)");
  cmd->add_option("--max-restarts", o->max_restarts,
                  "when a worker fails, stop and restart all workers up to R times (default 0; single node only)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--grace-period", o->grace_period_s,
                  "seconds a stopping worker gets between SIGTERM and SIGKILL (default 10)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--program", o->program,
                  "run this program instead of ztrain, with the arguments after `--` (tests, non-ztrain workers)");
  cmd->add_flag("--no-prefix", *no_prefix,
                "let workers write straight to the agent's stdout/stderr, without '[rank N] ' line prefixes");
  cmd->add_flag("--no-host-tier", *no_host_tier,
                "give the workers no ZT_SHM_PREFIX: no host-memory checkpoint tier (restores come from disk)");
  cmd->add_option("args", o->args, "after `--`: the ztrain subcommand and its arguments (or --program's)");
  cmd->footer(
      "Everything after `--` is the workers' command line, e.g.\n"
      "  ztrain launch --nproc 4 -- train --config run.json\n"
      "Multi-node: the same --hostfile and --master on every node, each with its own --node-rank,\n"
      "and ZT_STORE_TOKEN set to the same secret everywhere (docs/launch.md).");
  cmd->callback([o, no_prefix, no_host_tier, exit_code] {
    o->prefix_output = !*no_prefix;
    o->host_tier = !*no_host_tier;
    *exit_code = launch::RunAgent(*o);
  });
}

}  // namespace zt::cli
