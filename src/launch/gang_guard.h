// GangGuard: a small helper process that outlives the agent by a moment and kills the agent's
// worker process groups when the agent dies without dismissing it (SIGKILL, a crash, the OOM
// killer). The workers themselves also get SIGKILL from their parent-death signal (process.cc),
// but that signal covers only the agent's direct children: whatever a worker started (a shell's
// children, helper processes) is in the worker's process group, and only the guard reaches it.
// Invariants: the guard learns of the agent's death by end-of-file on a pipe whose only write end
// the agent holds (close-on-exec, so no worker keeps it open); it kills only the groups it was
// told to watch; a dismissed guard kills nothing and exits. It runs in its own process group, so
// a signal to the agent's group does not take it down with the agent.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace zt::launch {

class GangGuard {
 public:
  // Forks the guard. `max_groups`: the most groups watched at once. `unlink_on_death`: files the
  // guard unlinks after killing the groups when the agent died (the agent's own host-memory
  // segments, as /dev/shm paths); a missing one is not an error.
  static StatusOr<std::unique_ptr<GangGuard>> Start(int max_groups, std::vector<std::string> unlink_on_death);

  ~GangGuard();  // Dismiss()
  GangGuard(const GangGuard&) = delete;
  GangGuard& operator=(const GangGuard&) = delete;

  void Watch(pid_t pgid);   // a new worker's group (its pid)
  void Forget(pid_t pgid);  // a group that is gone
  void ForgetAll();         // between gangs, after the agent killed what was left
  // Tells the guard to exit without killing anything and reaps it. Idempotent.
  void Dismiss();

  pid_t pid() const { return pid_; }

 private:
  GangGuard(pid_t pid, int fd) : pid_(pid), fd_(fd) {}
  void Send(int32_t message);

  pid_t pid_ = -1;
  int fd_ = -1;  // the write end of the guard's pipe
  bool broken_ = false;
};

}  // namespace zt::launch
