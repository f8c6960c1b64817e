// The guard process: the agent writes 4-byte messages into a pipe (a pid > 0: watch that group;
// -pid: forget it; 0: forget all; kDismiss: exit quietly). End-of-file before kDismiss means the
// agent died: SIGKILL every watched group, unlink the given files, exit. The agent may have threads
// (OpenBLAS starts its pool when the library loads), so between fork and exit the guard calls
// only async-signal-safe functions and allocates nothing: its tables are built before the fork.
#include "launch/gang_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <vector>

#include "core/check.h"

namespace zt::launch {
namespace {

constexpr int32_t kForgetAll = 0;
constexpr int32_t kDismiss = INT32_MIN;

void WriteAll(int fd, const char* s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

// Decimal digits of v into buf (no allocation); returns the length.
size_t FormatInt(long v, char* buf) {
  char tmp[24];
  size_t n = 0;
  const bool neg = v < 0;
  unsigned long u = neg ? 0UL - static_cast<unsigned long>(v) : static_cast<unsigned long>(v);
  do {
    tmp[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u > 0);
  size_t len = 0;
  if (neg) buf[len++] = '-';
  while (n > 0) buf[len++] = tmp[--n];
  return len;
}

[[noreturn]] void GuardMain(int fd, pid_t agent, pid_t* groups, int capacity,
                            const std::vector<std::string>& unlink_on_death) {
  int count = 0;
  char buf[4096];
  size_t have = 0;
  while (true) {
    ssize_t r = read(fd, buf + have, sizeof(buf) - have);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;  // end of file: the agent is gone
    have += static_cast<size_t>(r);
    size_t used = 0;
    for (; used + sizeof(int32_t) <= have; used += sizeof(int32_t)) {
      int32_t m;
      memcpy(&m, buf + used, sizeof(m));
      if (m == kDismiss) _exit(0);
      if (m == kForgetAll) {
        count = 0;
      } else if (m > 0) {
        if (count < capacity) groups[count++] = m;
      } else {
        for (int i = 0; i < count; ++i) {
          if (groups[i] == -m) {
            groups[i] = groups[--count];
            break;
          }
        }
      }
    }
    memmove(buf, buf + used, have - used);
    have -= used;
  }
  int killed = 0, unlinked = 0;
  for (int i = 0; i < count; ++i) killed += killpg(groups[i], SIGKILL) == 0;
  for (const auto& path : unlink_on_death) unlinked += unlink(path.c_str()) == 0;
  if (count > 0 || unlinked > 0) {
    char line[160];
    size_t n = 0;
    auto add = [&](const char* s) {
      for (; *s && n < sizeof(line); ++s) line[n++] = *s;
    };
    add("ztrain launch: the agent (pid ");
    n += FormatInt(agent, line + n);
    add(") died; its guard sent SIGKILL to ");
    n += FormatInt(killed, line + n);
    add(" worker process group(s) and unlinked ");
    n += FormatInt(unlinked, line + n);
    add(" host-memory segment(s)\n");
    WriteAll(STDERR_FILENO, line, n);
  }
  _exit(0);
}

}  // namespace

StatusOr<std::unique_ptr<GangGuard>> GangGuard::Start(int max_groups, std::vector<std::string> unlink_on_death) {
  ZT_CHECK_GT(max_groups, 0);
  std::vector<pid_t> groups(static_cast<size_t>(max_groups));  // the child's table, allocated before fork
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Internal(std::string("pipe2: ") + strerror(errno));
  const pid_t agent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int e = errno;
    close(p[0]);
    close(p[1]);
    return Unavailable(std::string("cannot start the agent's guard process: fork: ") + strerror(e));
  }
  if (pid == 0) {
    close(p[1]);
    setpgid(0, 0);  // not in the agent's group: a signal to that group must not end the guard too
    for (int s : {SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGTTOU, SIGTSTP}) signal(s, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    prctl(PR_SET_NAME, "ztrain-guard", 0, 0, 0);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, STDIN_FILENO);
      dup2(devnull, STDOUT_FILENO);
      if (devnull > STDERR_FILENO) close(devnull);
    }
    GuardMain(p[0], agent, groups.data(), max_groups, unlink_on_death);
  }
  close(p[0]);
  setpgid(pid, pid);
  return std::unique_ptr<GangGuard>(new GangGuard(pid, p[1]));
}

GangGuard::~GangGuard() { Dismiss(); }

void GangGuard::Send(int32_t message) {
  if (fd_ < 0 || broken_) return;
  const char* p = reinterpret_cast<const char*>(&message);
  size_t left = sizeof(message);
  while (left > 0) {
    ssize_t w = write(fd_, p, left);  // 4 bytes <= PIPE_BUF: one atomic write
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      broken_ = true;
      char line[200];
      int n = snprintf(line, sizeof(line),
                       "ztrain launch: warning: the agent's guard process (pid %d) is gone (%s); workers' "
                       "children may outlive a killed agent\n",
                       static_cast<int>(pid_), strerror(errno));
      if (n > 0) WriteAll(STDERR_FILENO, line, static_cast<size_t>(std::min<int>(n, sizeof(line) - 1)));
      return;
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
}

void GangGuard::Watch(pid_t pgid) {
  if (pgid > 0) Send(static_cast<int32_t>(pgid));
}
void GangGuard::Forget(pid_t pgid) {
  if (pgid > 0) Send(-static_cast<int32_t>(pgid));
}
void GangGuard::ForgetAll() { Send(kForgetAll); }

void GangGuard::Dismiss() {
  if (fd_ < 0) return;
  Send(kDismiss);
  close(fd_);
  fd_ = -1;
  int status;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace zt::launch
