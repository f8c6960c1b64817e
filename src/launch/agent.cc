// The agent: plan (options -> ranks, store address, program, host-memory prefix), then one event
// loop per gang over a signalfd (SIGCHLD, SIGINT, SIGTERM, SIGHUP) and the workers' output pipes.
// A worker failure with restarts left stops the gang like a failure does, and once every worker
// is reaped the next gang starts with ZT_RESTART_COUNT one higher (same store, same token, same
// ZT_SHM_PREFIX). Multi-node agents also meet in the store: a failure on one node is published
// there and stops every node, and every agent waits for every node's workers before exiting
// (node 0 keeps the store up till then); they do not restart.
#include "launch/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>

#include "ckpt/host_store.h"
#include "comm/tcp_store.h"
#include "core/settings.h"
#include "launch/gang_guard.h"
#include "launch/hostfile.h"
#include "launch/output_pump.h"
#include "launch/process.h"

namespace zt::launch {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMaxLocalWorkers = 1 << 16;
// Keys the agents of a multi-node job share in the store.
constexpr char kFailureKey[] = "zt/launch/failure";       // what failed first (a message)
constexpr char kFailuresKey[] = "zt/launch/failures";     // counter: > 0 once anything failed
constexpr char kNodesDoneKey[] = "zt/launch/nodes_done";  // counter of nodes whose workers ended
constexpr auto kStorePollInterval = std::chrono::milliseconds(500);
const std::string kShmDir = "/dev/shm";  // where POSIX shared memory lives on Linux
// How long a restart waits for what the old gang's workers left in their groups to die.
constexpr auto kLeftoverWait = std::chrono::seconds(2);

void Say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void Say(const char* fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  std::string line = std::string("ztrain launch: ") + buf + "\n";
  ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());  // one write: whole lines
  (void)ignored;
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

StatusOr<std::string> ResolveProgram(const std::string& program) {
  if (program.find('/') != std::string::npos) {
    if (!IsExecutableFile(program)) return InvalidArgument("--program " + program + " is not an executable file");
    return program;
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t colon = dirs.find(':', start);
    std::string dir = dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + program;
    if (IsExecutableFile(candidate)) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return InvalidArgument("--program " + program + " was not found in PATH; give its path");
}

// "/zt-<digits>-<alnum>": the form of an agent's own prefix (ckpt::DefaultShmPrefix), whose
// segments any later agent removes once that pid is gone.
bool LooksLikeAgentPrefix(const std::string& prefix) {
  if (prefix.rfind("/zt-", 0) != 0) return false;
  size_t i = 4;
  while (i < prefix.size() && isdigit(static_cast<unsigned char>(prefix[i]))) ++i;
  if (i == 4 || i >= prefix.size() || prefix[i] != '-') return false;
  size_t j = ++i;
  while (j < prefix.size() && isalnum(static_cast<unsigned char>(prefix[j]))) ++j;
  return j > i && j == prefix.size();
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::string ConnectHostFor(const std::string& bind_host) {
  if (bind_host == "0.0.0.0" || bind_host.empty()) return "127.0.0.1";
  if (bind_host == "::") return "::1";
  return bind_host;
}

struct Worker {
  int rank = 0;
  int local_rank = 0;
  pid_t pid = -1;
  bool running = false;
};

// One run of the agent: the state its event loop needs.
class Agent {
 public:
  explicit Agent(AgentPlan plan, const AgentOptions& o) : plan_(std::move(plan)), options_(o) {}
  int Run();

 private:
  bool multi_node() const { return plan_.num_nodes > 1; }
  std::string NodeName() const {
    return "node " + std::to_string(plan_.node_rank) + "/" + std::to_string(plan_.num_nodes);
  }
  Status SetUpSignals();
  void RestoreSignals();
  void RemoveOrphans();
  void StartGuard();
  void CleanUpHostTier();
  Status StartStore();
  Status StartWorkers();
  void Loop();
  void HandleSignals();
  void Reap();
  void BeginStop(int sig, int exit_code, const std::string& why, bool restart = false);
  void WaitForLeftovers();
  int PendingSignal();
  void CheckOtherNodes();
  void Publish(const std::string& failure);
  void WaitForOtherNodes();
  int RunningCount() const;

  AgentPlan plan_;
  AgentOptions options_;
  sigset_t old_mask_{};
  bool signals_set_ = false;
  int signal_fd_ = -1;
  std::unique_ptr<comm::TcpStoreServer> server_;
  std::unique_ptr<comm::Store> client_;  // multi-node only
  std::vector<Worker> workers_;  // the current gang
  OutputPump pump_;
  std::unique_ptr<GangGuard> guard_;

  int restarts_ = 0;               // gangs started after the first: the current ZT_RESTART_COUNT
  bool restart_pending_ = false;   // stopping the gang to start the next one
  bool stopping_ = false;
  bool killed_ = false;
  Clock::time_point kill_at_;
  Clock::time_point next_store_poll_;
  int exit_code_ = 0;
  bool published_ = false;
};

int Agent::RunningCount() const {
  int n = 0;
  for (const auto& w : workers_) n += w.running;
  return n;
}

Status Agent::SetUpSignals() {
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGCHLD, SIGINT, SIGTERM, SIGHUP}) sigaddset(&mask, s);
  // Blocked before any thread (the store server's) starts, so only the signalfd sees them.
  if (pthread_sigmask(SIG_BLOCK, &mask, &old_mask_) != 0) return Internal("pthread_sigmask failed");
  signals_set_ = true;
  signal_fd_ = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd_ < 0) return Internal(std::string("signalfd: ") + strerror(errno));
  signal(SIGPIPE, SIG_IGN);  // a closed stdout must not kill the agent while workers run
  return OkStatus();
}

void Agent::RestoreSignals() {
  if (signal_fd_ >= 0) close(signal_fd_);
  signal_fd_ = -1;
  if (signals_set_) pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  signals_set_ = false;
}

void Agent::RemoveOrphans() {
  auto removed = ckpt::RemoveOrphanedHostSegments();
  if (!removed.ok()) {
    Say("warning: could not remove host-memory segments left by dead agents: %s", removed.status().message().c_str());
  } else if (!removed->empty()) {
    Say("removed %zu host-memory segment(s) left by agents that no longer run: %s", removed->size(),
        JoinNames(*removed).c_str());
  }
}

// The guard kills the workers' groups (and unlinks the agent's own segments) if this process
// dies without dismissing it. Without one (fork failed) the workers still have their
// parent-death signal.
void Agent::StartGuard() {
  std::vector<std::string> segments;  // those this node's workers may create
  if (!plan_.shm_prefix.empty() && !plan_.keep_host_segments) {
    for (int i = 0; i < plan_.nproc; ++i)
      segments.push_back(kShmDir + ckpt::HostStore::SegmentName(plan_.shm_prefix, plan_.first_rank + i));
  }
  auto guard = GangGuard::Start(plan_.nproc, std::move(segments));
  if (!guard.ok()) {
    Say("warning: %s; processes the workers start may outlive a killed agent", guard.status().message().c_str());
    return;
  }
  guard_ = std::move(*guard);
}

void Agent::CleanUpHostTier() {
  if (plan_.shm_prefix.empty()) return;
  if (plan_.keep_host_segments) {
    bool any = false;
    for (int i = 0; i < plan_.nproc && !any; ++i)
      any = access((kShmDir + ckpt::HostStore::SegmentName(plan_.shm_prefix, plan_.first_rank + i)).c_str(), F_OK) == 0;
    if (any) {
      Say("keeping the host-memory segments %s-r<rank> (ZT_SHM_PREFIX was given; remove them with `rm /dev/shm%s-r*`)",
          plan_.shm_prefix.c_str(), plan_.shm_prefix.c_str());
    }
    return;
  }
  auto removed = ckpt::RemoveHostSegments(plan_.shm_prefix);
  if (!removed.ok()) {
    Say("warning: could not remove the job's host-memory segments: %s", removed.status().message().c_str());
  } else if (!removed->empty()) {
    Say("removed the job's host-memory segment(s): %s", JoinNames(*removed).c_str());
  }
}

Status Agent::StartStore() {
  if (plan_.hosts_store) {
    auto server = comm::TcpStoreServer::Start(plan_.bind_host, plan_.store.port, plan_.token);
    if (!server.ok()) {
      return server.status().WithContext("could not start the job's store on " +
                                         comm::FormatHostPort(plan_.bind_host, plan_.store.port));
    }
    server_ = std::move(*server);
    plan_.store.port = server_->port();
  }
  if (multi_node()) {
    auto client = comm::ConnectTcpStore(plan_.store.host, plan_.store.port, plan_.token, settings::CommTimeout());
    if (!client.ok()) {
      return client.status().WithContext(NodeName() + " could not reach the job's store at " +
                                         comm::FormatHostPort(plan_.store.host, plan_.store.port) +
                                         " (is node 0's agent running with the same ZT_STORE_TOKEN?)");
    }
    client_ = std::move(*client);
  }
  return OkStatus();
}

Status Agent::StartWorkers() {
  const std::string store = comm::FormatHostPort(plan_.store.host, plan_.store.port);
  // Workers share this node's cores: unless told otherwise, each gets its share of kernel threads
  // (several OpenMP teams spinning on the same cores slow every one of them down).
  std::string threads = settings::IsSet("ZT_NUM_THREADS")
                            ? settings::GetString("ZT_NUM_THREADS")
                            : std::to_string(std::max<long>(1, sysconf(_SC_NPROCESSORS_ONLN) / plan_.nproc));
  for (int i = 0; i < plan_.nproc; ++i) {
    Worker w;
    w.local_rank = i;
    w.rank = plan_.first_rank + i;
    SpawnRequest req;
    req.program = plan_.program;
    req.argv = plan_.argv;
    std::vector<std::pair<std::string, std::string>> vars = {{"RANK", std::to_string(w.rank)},
                                                             {"WORLD_SIZE", std::to_string(plan_.world_size)},
                                                             {"LOCAL_RANK", std::to_string(i)},
                                                             {"LOCAL_WORLD_SIZE", std::to_string(plan_.nproc)},
                                                             {"MASTER_ADDR", plan_.store.host},
                                                             {"MASTER_PORT", std::to_string(plan_.store.port)},
                                                             {"ZT_STORE", store},
                                                             {"ZT_STORE_TOKEN", plan_.token},
                                                             {"ZT_NUM_THREADS", threads},
                                                             {"ZT_RESTART_COUNT", std::to_string(restarts_)}};
    std::vector<std::string> unset;
    if (plan_.shm_prefix.empty()) {
      unset.push_back("ZT_SHM_PREFIX");  // --no-host-tier: not even the agent's own environment's
    } else {
      vars.emplace_back("ZT_SHM_PREFIX", plan_.shm_prefix);
    }
    req.env = EnvironmentWith(vars, unset);
    req.signal_mask = old_mask_;
    int out[2] = {-1, -1}, err[2] = {-1, -1};
    if (options_.prefix_output) {
      if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        for (int fd : {out[0], out[1], err[0], err[1]})
          if (fd >= 0) close(fd);
        return Internal(std::string("pipe2: ") + strerror(errno));
      }
      req.stdout_fd = out[1];
      req.stderr_fd = err[1];
    }
    auto pid = Spawn(req);
    if (out[1] >= 0) close(out[1]);
    if (err[1] >= 0) close(err[1]);
    if (!pid.ok()) {
      if (out[0] >= 0) close(out[0]);
      if (err[0] >= 0) close(err[0]);
      return pid.status().WithContext("starting worker rank " + std::to_string(w.rank));
    }
    w.pid = *pid;
    w.running = true;
    workers_.push_back(w);
    if (guard_) guard_->Watch(w.pid);
    if (options_.prefix_output) {
      const std::string prefix = "[rank " + std::to_string(w.rank) + "] ";
      pump_.Add(out[0], STDOUT_FILENO, prefix);
      pump_.Add(err[0], STDERR_FILENO, prefix);
    }
  }
  return OkStatus();
}

void Agent::Publish(const std::string& failure) {
  if (!client_ || published_) return;
  published_ = true;
  // Message first, then the counter the other agents poll, so they always find the message.
  Status s = client_->Set(kFailureKey, failure);
  if (s.ok()) s = client_->Add(kFailuresKey, 1).status();
  if (!s.ok()) Say("could not tell the other nodes about the failure: %s", s.message().c_str());
}

// Stops the gang: `sig` to every running worker's group, SIGKILL after the grace period. With
// `restart`, the next gang starts once all are reaped (unless a signal to the agent cancels it).
void Agent::BeginStop(int sig, int exit_code, const std::string& why, bool restart) {
  if (stopping_) return;
  stopping_ = true;
  restart_pending_ = restart;
  exit_code_ = exit_code;
  kill_at_ = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(options_.grace_period_s * 1000));
  const int n = RunningCount();
  if (n > 0)
    Say("stopping %d worker(s) with %s (SIGKILL after %gs)", n, SignalName(sig).c_str(), options_.grace_period_s);
  for (const auto& w : workers_)
    if (w.running) SignalGroup(w.pid, sig);
  if (!restart) Publish(NodeName() + ": " + why);
}

void Agent::Reap() {
  for (auto& w : workers_) {
    if (!w.running) continue;
    int status = 0;
    pid_t r = waitpid(w.pid, &status, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR)) continue;
    w.running = false;
    if (guard_ && r > 0 && killpg(w.pid, 0) != 0 && errno == ESRCH) guard_->Forget(w.pid);  // nothing left in it
    if (r < 0) {  // cannot happen for our own child; do not spin on it
      Say("lost track of worker rank %d (pid %d): %s", w.rank, w.pid, strerror(errno));
      if (!stopping_) BeginStop(SIGTERM, 1, "the agent lost track of worker rank " + std::to_string(w.rank));
      continue;
    }
    const bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const std::string what =
        "worker rank " + std::to_string(w.rank) + " (pid " + std::to_string(w.pid) + ") " + DescribeExit(status);
    if (failed && !stopping_) {
      const int max = options_.max_restarts;
      if (restarts_ < max) {
        Say("%s; restarting the job (restart %d of %d)", what.c_str(), restarts_ + 1, max);
        BeginStop(SIGTERM, 1, what, /*restart=*/true);
      } else {
        if (max > 0) {
          Say("%s; giving up: all %d restart(s) of --max-restarts %d were used", what.c_str(), restarts_, max);
        } else {
          Say("%s", what.c_str());
        }
        BeginStop(SIGTERM, 1, what);
      }
    } else if (failed || stopping_) {
      Say("%s", what.c_str());
    }
  }
}

void Agent::HandleSignals() {
  signalfd_siginfo si;
  while (read(signal_fd_, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
    const int sig = static_cast<int>(si.ssi_signo);
    if (sig == SIGCHLD) continue;  // Reap() runs after every wake-up
    if (!stopping_) {
      Say("received %s; forwarding it to the workers", SignalName(sig).c_str());
      BeginStop(sig, 128 + sig, "the agent received " + SignalName(sig));
    } else if (restart_pending_) {  // a signal to the agent never leads to a restart
      restart_pending_ = false;
      exit_code_ = 128 + sig;
      Say("received %s while restarting the job; stopping instead", SignalName(sig).c_str());
      for (const auto& w : workers_)
        if (w.running) SignalGroup(w.pid, sig);
    } else if (!killed_) {
      Say("received %s again; killing the workers", SignalName(sig).c_str());
      kill_at_ = Clock::now();
    }
  }
}

void Agent::CheckOtherNodes() {
  if (!client_ || stopping_ || Clock::now() < next_store_poll_) return;
  next_store_poll_ = Clock::now() + kStorePollInterval;
  auto failures = client_->Add(kFailuresKey, 0);  // a read that never waits
  if (!failures.ok()) {
    Say("lost the job's store: %s", failures.status().message().c_str());
    BeginStop(SIGTERM, 1, "lost the job's store");
    return;
  }
  if (*failures == 0) return;
  auto what = client_->Get(kFailureKey);
  Say("another node failed: %s", what.ok() ? what->c_str() : "(no message)");
  published_ = true;  // already known to everyone
  BeginStop(SIGTERM, 1, "");
}

void Agent::Loop() {
  next_store_poll_ = Clock::now();
  while (RunningCount() > 0) {
    std::vector<pollfd> fds{{signal_fd_, POLLIN, 0}};
    pump_.AppendPollFds(&fds);
    int timeout_ms = -1;
    if (stopping_ && !killed_) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(kill_at_ - Clock::now()).count();
      timeout_ms = static_cast<int>(std::max<int64_t>(0, left));
    }
    if (client_ && !stopping_) timeout_ms = static_cast<int>(kStorePollInterval.count());
    int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) {
      Say("poll failed: %s", strerror(errno));
      BeginStop(SIGTERM, 1, "the agent's poll failed");
    }
    if (n > 0) {
      if (fds[0].revents) HandleSignals();
      for (size_t i = 1; i < fds.size(); ++i)
        if (fds[i].revents) pump_.OnReadable(fds[i].fd);
    }
    Reap();
    if (stopping_ && !killed_ && Clock::now() >= kill_at_ && RunningCount() > 0) {
      killed_ = true;
      for (const auto& w : workers_) {
        if (!w.running) continue;
        Say("worker rank %d (pid %d) is still running; sending SIGKILL", w.rank, w.pid);
        SignalGroup(w.pid, SIGKILL);
      }
    }
    CheckOtherNodes();
  }
  pump_.DrainAndClose();
  if (exit_code_ != 0) {
    for (const auto& w : workers_) SignalGroup(w.pid, SIGKILL);  // what the workers left in their groups
  }
}

// Before a new gang: waits (bounded) until the old gang's groups are empty, so nothing of it still
// holds its devices or writes its host-memory segment while the new one starts.
void Agent::WaitForLeftovers() {
  const auto deadline = Clock::now() + kLeftoverWait;
  for (const auto& w : workers_) {
    while (killpg(w.pid, 0) == 0 && Clock::now() < deadline) usleep(10000);
    if (killpg(w.pid, 0) == 0) Say("worker rank %d's process group %d still has processes; restarting anyway", w.rank, w.pid);
  }
}

// The last SIGINT/SIGTERM/SIGHUP waiting in the signalfd (0: none); SIGCHLDs are dropped.
int Agent::PendingSignal() {
  signalfd_siginfo si;
  int sig = 0;
  while (read(signal_fd_, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si)))
    if (si.ssi_signo != SIGCHLD) sig = static_cast<int>(si.ssi_signo);
  return sig;
}

// After its own workers end, a multi-node agent waits until every node's workers have ended (or
// a node failed, or ZT_COMM_TIMEOUT_S passed, or it is signalled): its exit status then covers the
// whole job, and node 0 keeps the store up for the nodes still running. After a failure only node
// 0 waits, and only long enough for the others to stop their workers.
void Agent::WaitForOtherNodes() {
  if (!client_) return;
  auto done = client_->Add(kNodesDoneKey, 1);
  if (!done.ok() || (exit_code_ != 0 && !plan_.hosts_store)) return;
  const auto failure_wait =
      std::chrono::milliseconds(static_cast<int64_t>(options_.grace_period_s * 1000)) + std::chrono::seconds(5);
  auto deadline = Clock::now() + (exit_code_ != 0 ? failure_wait : settings::CommTimeout());
  bool failure_seen = exit_code_ != 0, said = false;
  while (true) {
    if (!failure_seen) {
      auto failures = client_->Add(kFailuresKey, 0);
      if (failures.ok() && *failures > 0) {
        failure_seen = true;
        auto what = client_->Get(kFailureKey);
        Say("another node failed: %s", what.ok() ? what->c_str() : "(no message)");
        exit_code_ = 1;
        if (!plan_.hosts_store) return;
        deadline = std::min(deadline, Clock::now() + failure_wait);
      }
    }
    if (*done >= plan_.num_nodes || Clock::now() >= deadline) break;
    if (!said) Say("waiting for the other nodes' workers to finish");
    said = true;
    pollfd p{signal_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(kStorePollInterval.count())) > 0) {
      const int sig = PendingSignal();
      if (sig != 0) {
        Say("received %s while waiting for the other nodes", SignalName(sig).c_str());
        if (exit_code_ == 0) exit_code_ = 128 + sig;
        return;
      }
    }
    done = client_->Add(kNodesDoneKey, 0);
    if (!done.ok()) return;  // node 0 saw every node done and stopped the store
  }
  if (*done < plan_.num_nodes) Say("gave up waiting for %d node(s)", plan_.num_nodes - static_cast<int>(*done));
}

int Agent::Run() {
  RemoveOrphans();
  StartGuard();  // forks before the store opens its socket, which the guard must not hold
  Status s = SetUpSignals();
  if (s.ok()) s = StartStore();
  if (s.ok()) {
    Say("%s: starting %d worker(s), ranks %d..%d of %d; store at %s", NodeName().c_str(), plan_.nproc, plan_.first_rank,
        plan_.first_rank + plan_.nproc - 1, plan_.world_size,
        comm::FormatHostPort(plan_.store.host, plan_.store.port).c_str());
    while (true) {
      Status started = StartWorkers();
      if (!started.ok()) {
        Say("error: %s", started.message().c_str());
        BeginStop(SIGTERM, 1, started.message());
        restart_pending_ = false;  // a worker that cannot be started will not start next time either
      }
      Loop();
      if (!restart_pending_) break;
      WaitForLeftovers();
      if (const int sig = PendingSignal(); sig != 0) {  // arrived after the last worker was reaped
        Say("received %s while restarting the job; stopping instead", SignalName(sig).c_str());
        exit_code_ = 128 + sig;
        break;
      }
      if (guard_) guard_->ForgetAll();
      workers_.clear();
      ++restarts_;
      restart_pending_ = stopping_ = killed_ = false;
      exit_code_ = 0;
      Say("restart %d of %d: starting %d worker(s) with ZT_RESTART_COUNT=%d", restarts_, options_.max_restarts,
          plan_.nproc, restarts_);
    }
    WaitForOtherNodes();
  }
  if (!s.ok()) {
    Say("error: %s", s.message().c_str());
    exit_code_ = 1;
  }
  client_.reset();
  if (server_) server_->Stop();
  server_.reset();
  CleanUpHostTier();
  if (guard_) guard_->Dismiss();
  RestoreSignals();
  return exit_code_;
}

}  // namespace

StatusOr<AgentPlan> PlanAgent(const AgentOptions& o) {
  AgentPlan p;
  if (o.max_restarts < 0) return InvalidArgument("--max-restarts must be >= 0");
  p.max_restarts = o.max_restarts;
  if (!(o.grace_period_s >= 0)) return InvalidArgument("--grace-period must be >= 0 seconds");
  if (o.nproc < 0 || o.nproc > kMaxLocalWorkers)
    return InvalidArgument("--nproc " + std::to_string(o.nproc) + " is not in 1.." + std::to_string(kMaxLocalWorkers));
  std::optional<comm::HostPort> master;
  if (!o.master.empty()) {
    auto hp = comm::ParseHostPort(o.master);
    if (!hp.ok()) return hp.status().WithContext("--master");
    master = *hp;
  }
  if (o.hostfile.empty()) {
    if (o.node_rank >= 1)
      return InvalidArgument("--node-rank " + std::to_string(o.node_rank) + " needs --hostfile (the job's nodes)");
    if (o.nproc == 0) return InvalidArgument("--nproc N is required: the number of workers to start on this node");
    p.nproc = p.world_size = o.nproc;
  } else {
    ZT_ASSIGN_OR_RETURN(Hostfile hf, LoadHostfile(o.hostfile));
    p.num_nodes = static_cast<int>(hf.nodes.size());
    if (o.node_rank < 0)
      return InvalidArgument("--hostfile needs --node-rank R (this node's line in " + o.hostfile + ", from 0)");
    if (o.node_rank >= p.num_nodes) {
      return InvalidArgument("--node-rank " + std::to_string(o.node_rank) + " but " + o.hostfile + " lists " +
                             std::to_string(p.num_nodes) + " node(s)");
    }
    if (!master && p.num_nodes > 1)
      return InvalidArgument("a multi-node job needs --master HOST:PORT (node 0's address and a free port)");
    p.node_rank = o.node_rank;
    p.nproc = hf.nodes[o.node_rank].slots;
    if (o.nproc != 0 && o.nproc != p.nproc) {
      return InvalidArgument("--nproc " + std::to_string(o.nproc) + " but " + o.hostfile + " gives " +
                             hf.nodes[o.node_rank].host + " slots=" + std::to_string(p.nproc) +
                             "; drop --nproc or make them agree");
    }
    p.first_rank = hf.FirstRank(o.node_rank);
    p.world_size = hf.TotalSlots();
  }
  p.hosts_store = p.node_rank == 0;
  if (o.max_restarts > 0 && p.num_nodes > 1) {
    return InvalidArgument("--max-restarts " + std::to_string(o.max_restarts) + " with " + o.hostfile + "'s " +
                           std::to_string(p.num_nodes) +
                           " nodes: gang restarts work on a single node only; give --max-restarts 0 for a "
                           "multi-node job (docs/launch.md)");
  }

  const bool bind_given = settings::IsSet("ZT_STORE_BIND");
  if (master) {
    p.store = *master;
    p.bind_host = bind_given ? settings::GetString("ZT_STORE_BIND") : master->host;
  } else {
    p.bind_host = settings::GetString("ZT_STORE_BIND");
    p.store = comm::HostPort{ConnectHostFor(p.bind_host), 0};
  }

  p.token = settings::GetString("ZT_STORE_TOKEN");
  if (p.token.empty()) {
    if (p.num_nodes > 1) {
      return InvalidArgument(
          "a multi-node job needs ZT_STORE_TOKEN set to the same secret on every node's agent "
          "(e.g. `export ZT_STORE_TOKEN=$(openssl rand -hex 16)` once, then pass it on)");
    }
    ZT_ASSIGN_OR_RETURN(p.token, comm::GenerateToken());
  }

  if (o.program.empty()) {
    if (o.args.empty()) {
      return InvalidArgument(
          "give the ztrain subcommand to run after `--`, e.g. "
          "`ztrain launch --nproc 2 -- train --config run.json`");
    }
    if (o.args[0] == "launch") return InvalidArgument("the workers cannot run `ztrain launch` themselves");
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0)
      return Internal(std::string("cannot find the ztrain binary: readlink /proc/self/exe: ") + strerror(errno));
    p.program.assign(buf, static_cast<size_t>(n));
  } else {
    ZT_ASSIGN_OR_RETURN(p.program, ResolveProgram(o.program));
  }
  p.argv.push_back(p.program);
  p.argv.insert(p.argv.end(), o.args.begin(), o.args.end());

  if (o.host_tier) {
    if (settings::IsSet("ZT_SHM_PREFIX")) {
      p.shm_prefix = settings::GetString("ZT_SHM_PREFIX");
      ZT_RETURN_IF_ERROR(ckpt::HostStore::CheckPrefix(p.shm_prefix));
      if (LooksLikeAgentPrefix(p.shm_prefix)) {
        return InvalidArgument("ZT_SHM_PREFIX='" + p.shm_prefix +
                               "' has the form of an agent's own prefix (/zt-<pid>-<id>), whose segments any "
                               "agent removes once that pid is gone; choose another name, e.g. /zt-myjob");
      }
      p.keep_host_segments = true;
    } else {
      ZT_ASSIGN_OR_RETURN(std::string id, comm::GenerateToken());
      p.shm_prefix = ckpt::DefaultShmPrefix(static_cast<long>(getpid()), id.substr(0, 12));
    }
  }
  return p;
}

int RunAgent(const AgentOptions& options) {
  auto plan = PlanAgent(options);
  if (!plan.ok()) {
    Say("error: %s", plan.status().message().c_str());
    return 1;
  }
  Agent agent(std::move(*plan), options);
  return agent.Run();
}

}  // namespace zt::launch
