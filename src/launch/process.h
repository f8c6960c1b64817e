// Child processes for the agent: spawn a program in its own process group with a given
// environment and standard streams, signal whole groups, and describe how a process ended.
// Invariant: Spawn either returns the pid of a child that has exec'd the program, or an error
// saying why it could not (the exec failure is reported back through a close-on-exec pipe), so
// a missing or non-executable program is never mistaken for a worker that exited 127.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "core/status.h"

namespace zt::launch {

struct SpawnRequest {
  std::string program;            // path, not searched in PATH
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // "NAME=value", the child's whole environment
  int stdout_fd = -1;             // the child's stdout/stderr; -1 inherits the parent's
  int stderr_fd = -1;
  sigset_t signal_mask{};  // the child's signal mask (the agent blocks signals it reads)
};

// Starts the program in a new process group led by the child, stdin from /dev/null, SIGPIPE
// default, and with a parent-death signal (SIGKILL) so workers do not outlive a killed agent.
// That signal reaches only this child: Linux clears it in the children the program forks (it is
// kept across execve), so what the program starts stays in its group for a GangGuard to kill.
StatusOr<pid_t> Spawn(const SpawnRequest& req);

// "SIGKILL" (or "signal 64" for one without a name).
std::string SignalName(int sig);
// From a waitpid status: "exited with status 3", "was killed by signal 9 (SIGKILL)".
std::string DescribeExit(int wait_status);
// Sends sig to the process group led by pid; a group that is already gone is not an error.
void SignalGroup(pid_t pid, int sig);

// This process's environment with the named variables replaced/added ("NAME=value" entries) and
// those in `unset` removed.
std::vector<std::string> EnvironmentWith(const std::vector<std::pair<std::string, std::string>>& overrides,
                                         const std::vector<std::string>& unset = {});

}  // namespace zt::launch
