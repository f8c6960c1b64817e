// fork+exec with a close-on-exec error pipe; only async-signal-safe calls between fork and exec.
#include "launch/process.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>

extern char** environ;

namespace zt::launch {
namespace {

// Writes the errno of a failed step to `fd` and exits; the parent reads it.
[[noreturn]] void ChildFail(int fd, int step) {
  int msg[2] = {step, errno};
  ssize_t ignored = write(fd, msg, sizeof(msg));
  (void)ignored;
  _exit(127);
}

const char* const kStepNames[] = {"setpgid", "prctl", "open /dev/null", "dup2", "sigprocmask", "execve"};

}  // namespace

StatusOr<pid_t> Spawn(const SpawnRequest& req) {
  ZT_CHECK(!req.argv.empty()) << "Spawn needs argv[0]";
  // Everything the child touches is prepared before fork: it may only make async-signal-safe calls.
  std::vector<char*> argv, envp;
  for (const auto& a : req.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : req.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) return Internal(std::string("pipe2: ") + strerror(errno));
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(err_pipe[0]);
    close(err_pipe[1]);
    return Unavailable(std::string("fork failed: ") + strerror(e));
  }
  if (pid == 0) {
    const int fd = err_pipe[1];
    if (setpgid(0, 0) != 0) ChildFail(fd, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail(fd, 1);
    if (getppid() != parent) _exit(128 + SIGKILL);  // the agent died before prctl took effect
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0) ChildFail(fd, 2);
    if (dup2(devnull, STDIN_FILENO) < 0) ChildFail(fd, 3);
    if (req.stdout_fd >= 0 && dup2(req.stdout_fd, STDOUT_FILENO) < 0) ChildFail(fd, 3);
    if (req.stderr_fd >= 0 && dup2(req.stderr_fd, STDERR_FILENO) < 0) ChildFail(fd, 3);
    signal(SIGPIPE, SIG_DFL);
    if (sigprocmask(SIG_SETMASK, &req.signal_mask, nullptr) != 0) ChildFail(fd, 4);
    execve(req.program.c_str(), argv.data(), envp.data());
    ChildFail(fd, 5);
  }
  close(err_pipe[1]);
  setpgid(pid, pid);  // also in the parent, so the group exists before anyone signals it (EACCES after exec is fine)
  int msg[2];
  ssize_t n;
  do {
    n = read(err_pipe[0], msg, sizeof(msg));
  } while (n < 0 && errno == EINTR);
  close(err_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof(msg))) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const int step = msg[0] >= 0 && msg[0] < 6 ? msg[0] : 5;
    std::string what = step == 5 ? "cannot execute " + req.program : std::string(kStepNames[step]) + " failed";
    return FailedPrecondition(what + ": " + strerror(msg[1]));
  }
  return pid;  // n == 0: exec succeeded and closed the pipe
}

std::string SignalName(int sig) {
  if (const char* abbrev = sigabbrev_np(sig)) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(sig);
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + " (" + SignalName(sig) + ")" +
           (WCOREDUMP(status) ? ", core dumped" : "");
  }
  return "ended with wait status " + std::to_string(status);
}

void SignalGroup(pid_t pid, int sig) {
  if (pid > 0) killpg(pid, sig);  // ESRCH: nobody left in the group
}

std::vector<std::string> EnvironmentWith(const std::vector<std::pair<std::string, std::string>>& overrides,
                                         const std::vector<std::string>& unset) {
  std::map<std::string, std::string> replace(overrides.begin(), overrides.end());
  for (const auto& name : unset) replace.emplace(name, "");
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    if (replace.count(kv.substr(0, kv.find('=')))) continue;
    env.push_back(std::move(kv));
  }
  for (const auto& [k, v] : overrides) {
    if (std::find(unset.begin(), unset.end(), k) == unset.end()) env.push_back(k + "=" + v);
  }
  return env;
}

}  // namespace zt::launch
