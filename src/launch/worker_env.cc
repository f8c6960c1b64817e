// Worker environment detection (one table of launcher variables) and the worker's store
// connection. Every error names the variable and its value and says what a launcher should set.
#include "launch/worker_env.h"

#include <cstdlib>
#include <vector>

#include "comm/memory_store.h"
#include "comm/tcp_store.h"
#include "core/settings.h"

namespace zt::launch {
namespace {

constexpr int kMaxWorldSize = 1 << 20;

// The variables one launcher sets. Empty names are not set by that launcher.
struct Flavour {
  Launcher launcher;
  const char* rank;
  const char* size;
  const char* local_rank;
  const char* local_size;
};

constexpr Flavour kTorchrun = {Launcher::kEnv, "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"};
constexpr Flavour kOpenMpi = {Launcher::kOpenMpi, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                              "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"};
constexpr Flavour kMpich = {Launcher::kMpich, "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"};
// Slurm's local size has no single variable; see SlurmLocalSize.
constexpr Flavour kSlurm = {Launcher::kSlurm, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", ""};

class Env {
 public:
  explicit Env(const EnvLookup& lookup) : lookup_(lookup) {}

  std::optional<std::string> Get(const std::string& name) const {
    auto v = lookup_(name);
    if (v && v->empty()) return std::nullopt;  // VAR= counts as unset
    return v;
  }
  bool Has(const std::string& name) const { return Get(name).has_value(); }

  // nullopt when unset; an error when set but not a decimal integer in [min, kMaxWorldSize].
  StatusOr<std::optional<int>> Int(const std::string& name, int min) const {
    auto v = Get(name);
    if (!v) return std::optional<int>();
    const std::string& s = *v;
    bool digits = !s.empty() && s.size() <= 9;
    for (char c : s) digits = digits && c >= '0' && c <= '9';
    int x = digits ? std::atoi(s.c_str()) : -1;
    if (!digits || x < min || x > kMaxWorldSize) {
      return InvalidArgument(name + "='" + s + "' is not an integer in [" + std::to_string(min) + ", " +
                             std::to_string(kMaxWorldSize) + "]");
    }
    return std::optional<int>(x);
  }

  StatusOr<int> RequiredInt(const std::string& name, int min, const std::string& why) const {
    ZT_ASSIGN_OR_RETURN(std::optional<int> v, Int(name, min));
    if (!v) return InvalidArgument(name + " is not set but " + why);
    return *v;
  }

 private:
  const EnvLookup& lookup_;
};

// Slurm's tasks per node, compressed as "2(x3),1": entry `node` of the expanded list. Returns the
// local size and (through *sum) the total over all nodes.
StatusOr<int> ExpandTasksPerNode(const std::string& name, const std::string& value, int node, int* sum) {
  auto bad = [&] { return InvalidArgument(name + "='" + value + "' is not a Slurm task list like '2(x3),1'"); };
  int index = 0, found = -1;
  int64_t total = 0;
  size_t pos = 0;
  while (pos <= value.size()) {
    size_t comma = value.find(',', pos);
    std::string item = value.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    int count = 0, repeat = 1;
    char tail = 0;
    if (std::sscanf(item.c_str(), "%d(x%d)%c", &count, &repeat, &tail) == 2) {
      if (item.back() != ')') return bad();
    } else {
      repeat = 1;
      char* end = nullptr;
      long c = std::strtol(item.c_str(), &end, 10);
      if (item.empty() || *end != '\0' || item[0] < '0' || item[0] > '9' || c > kMaxWorldSize) return bad();
      count = static_cast<int>(c);
    }
    if (count < 0 || count > kMaxWorldSize || repeat < 1 || repeat > kMaxWorldSize) return bad();
    if (node >= index && node < index + repeat) found = count;
    index += repeat;
    total += static_cast<int64_t>(count) * repeat;
    if (total > kMaxWorldSize) return bad();
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (found < 0) {
    return InvalidArgument("SLURM_NODEID=" + std::to_string(node) + " but " + name + "='" + value + "' lists " +
                           std::to_string(index) + " node(s)");
  }
  *sum = static_cast<int>(total);
  return found;
}

struct RankInfo {
  int rank, size, local_rank, local_size;
};

StatusOr<RankInfo> ReadFlavour(const Env& env, const Flavour& f) {
  RankInfo r{};
  const std::string rank = f.rank, size = f.size, local_rank = f.local_rank, local_size = f.local_size;
  const std::string local_why =
      rank + " is; a worker also needs " + local_rank + " and " + local_size + " (its place on its node)";
  ZT_ASSIGN_OR_RETURN(r.size, env.RequiredInt(size, 1, rank + " is; set both"));
  ZT_ASSIGN_OR_RETURN(r.rank, env.RequiredInt(rank, 0, size + " is; set both"));
  ZT_ASSIGN_OR_RETURN(r.local_rank, env.RequiredInt(local_rank, 0, local_why));
  ZT_ASSIGN_OR_RETURN(r.local_size, env.RequiredInt(local_size, 1, local_why));
  return r;
}

StatusOr<RankInfo> ReadSlurm(const Env& env) {
  // A job step (srun) has SLURM_STEP_*; the batch allocation's SLURM_NTASKS is the fallback.
  const bool step = env.Has("SLURM_STEP_NUM_TASKS");
  const std::string size_var = step ? "SLURM_STEP_NUM_TASKS" : "SLURM_NTASKS";
  const std::string list_var = step ? "SLURM_STEP_TASKS_PER_NODE" : "SLURM_TASKS_PER_NODE";
  RankInfo r{};
  ZT_ASSIGN_OR_RETURN(r.size, env.RequiredInt(size_var, 1, "SLURM_PROCID is; start workers with srun"));
  ZT_ASSIGN_OR_RETURN(r.rank, env.RequiredInt("SLURM_PROCID", 0, size_var + " is"));
  ZT_ASSIGN_OR_RETURN(r.local_rank, env.RequiredInt("SLURM_LOCALID", 0, "SLURM_PROCID is; start workers with srun"));
  if (auto list = env.Get(list_var)) {
    ZT_ASSIGN_OR_RETURN(int node, env.RequiredInt("SLURM_NODEID", 0, list_var + " is"));
    int sum = 0;
    ZT_ASSIGN_OR_RETURN(r.local_size, ExpandTasksPerNode(list_var, *list, node, &sum));
    if (sum != r.size) {
      return InvalidArgument(list_var + "='" + *list + "' adds up to " + std::to_string(sum) + " tasks but " +
                             size_var + "=" + std::to_string(r.size));
    }
  } else {
    ZT_ASSIGN_OR_RETURN(r.local_size, env.RequiredInt("SLURM_NTASKS_PER_NODE", 1,
                                                      "neither " + list_var + " is; start workers with srun"));
  }
  return r;
}

Status CheckConsistent(const RankInfo& r, const Flavour& f, bool slurm) {
  const std::string size = slurm ? "the world size" : f.size;
  const std::string local_size = slurm ? "the tasks on this node" : f.local_size;
  if (r.rank >= r.size) {
    return InvalidArgument(std::string(f.rank) + "=" + std::to_string(r.rank) + " is not below " + size + " (" +
                           std::to_string(r.size) + ")");
  }
  if (r.local_rank >= r.local_size) {
    return InvalidArgument(std::string(f.local_rank) + "=" + std::to_string(r.local_rank) + " is not below " +
                           local_size + " (" + std::to_string(r.local_size) + ")");
  }
  if (r.local_size > r.size) {
    return InvalidArgument(local_size + " (" + std::to_string(r.local_size) + ") exceeds " + size + " (" +
                           std::to_string(r.size) + ")");
  }
  return OkStatus();
}

// 1..65535, or 0 when `s` is anything else.
int ParsePort(const std::string& s) {
  bool digits = !s.empty() && s.size() <= 5;
  for (char c : s) digits = digits && c >= '0' && c <= '9';
  int port = digits ? std::atoi(s.c_str()) : 0;
  return port <= 65535 ? port : 0;
}

std::optional<std::string> ProcessEnv(const std::string& name) {
  if (name.rfind("ZT_", 0) == 0) {  // declared settings go through the one table
    std::string v = settings::GetString(name);
    if (v.empty()) return std::nullopt;
    return v;
  }
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

}  // namespace

const char* LauncherName(Launcher l) {
  switch (l) {
    case Launcher::kNone:
      return "no launcher";
    case Launcher::kAgent:
      return "ztrain launch";
    case Launcher::kEnv:
      return "RANK/WORLD_SIZE environment";
    case Launcher::kOpenMpi:
      return "Open MPI";
    case Launcher::kMpich:
      return "MPICH/PMI";
    case Launcher::kSlurm:
      return "Slurm";
  }
  return "?";
}

std::string WorkerEnv::Describe() const {
  return "rank " + std::to_string(rank) + "/" + std::to_string(world_size) + " (local " + std::to_string(local_rank) +
         "/" + std::to_string(local_world_size) + ") from " + LauncherName(launcher);
}

StatusOr<WorkerEnv> DetectWorkerEnv() { return DetectWorkerEnv(ProcessEnv); }

StatusOr<WorkerEnv> DetectWorkerEnv(const EnvLookup& lookup) {
  Env env(lookup);
  WorkerEnv w;
  if (auto s = env.Get("ZT_STORE")) {
    auto hp = comm::ParseHostPort(*s);
    if (!hp.ok()) return hp.status().WithContext("ZT_STORE");
    w.store = *hp;
  }
  w.token = env.Get("ZT_STORE_TOKEN").value_or("");
  ZT_ASSIGN_OR_RETURN(std::optional<int> restarts, env.Int("ZT_RESTART_COUNT", 0));
  w.restart_count = restarts.value_or(0);
  if (auto a = env.Get("MASTER_ADDR")) w.master_addr = *a;
  if (auto p = env.Get("MASTER_PORT")) {
    w.master_port = ParsePort(*p);
    if (w.master_port == 0) return InvalidArgument("MASTER_PORT='" + *p + "' is not a port number (1..65535)");
  }

  const Flavour* flavour = nullptr;
  StatusOr<RankInfo> info = Internal("unset");
  for (const Flavour* f : {&kTorchrun, &kOpenMpi, &kMpich}) {
    if (env.Has(f->rank) || env.Has(f->size)) {
      flavour = f;
      info = ReadFlavour(env, *f);
      break;
    }
  }
  if (flavour == nullptr && env.Has("SLURM_PROCID")) {
    flavour = &kSlurm;
    info = ReadSlurm(env);
  }
  if (flavour == nullptr) {
    w.launcher = Launcher::kNone;
    return w;
  }
  if (!info.ok()) return info.status();
  ZT_RETURN_IF_ERROR(CheckConsistent(*info, *flavour, flavour == &kSlurm));
  w.launcher = flavour->launcher;
  if (w.launcher == Launcher::kEnv && w.store) w.launcher = Launcher::kAgent;
  w.rank = info->rank;
  w.world_size = info->size;
  w.local_rank = info->local_rank;
  w.local_world_size = info->local_size;
  return w;
}

JobConnection::JobConnection() = default;
JobConnection::JobConnection(JobConnection&&) noexcept = default;
JobConnection& JobConnection::operator=(JobConnection&&) noexcept = default;
JobConnection::~JobConnection() {
  store.reset();  // clients first, then the server they talk to
  if (server) server->Stop();
}

Status JobConnection::Finish() {
  if (world_size == 1 && !server) return OkStatus();
  ZT_CHECK(store != nullptr) << "JobConnection::Finish without a store";
  // The store outlives a gang (`ztrain launch --max-restarts`): each gang counts under its own keys.
  const std::string counter = "zt/job/attempt-" + std::to_string(restart_count) + "/finished";
  const std::string all = counter + "/all";
  ZT_ASSIGN_OR_RETURN(int64_t arrived, store->Add(counter, 1));
  if (arrived == world_size) ZT_RETURN_IF_ERROR(store->Set(all, "1"));
  if (server) {
    Status s = store->Wait({all});
    if (!s.ok()) {
      return s.WithContext("rank " + std::to_string(rank) + " hosts the store and waited for every rank to finish");
    }
  }
  return OkStatus();
}

StatusOr<JobConnection> ConnectJob(const WorkerEnv& env) {
  const auto timeout = settings::CommTimeout();
  JobConnection job;
  job.rank = env.rank;
  job.world_size = env.world_size;
  job.restart_count = env.restart_count;
  if (!env.store && env.world_size == 1) {
    job.store = std::make_unique<comm::MemoryStore>();
    job.store->set_timeout(timeout);
    return job;
  }
  const std::string who = "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) + " (" +
                          LauncherName(env.launcher) + ")";
  if (env.token.empty()) {
    return InvalidArgument(who +
                           " needs ZT_STORE_TOKEN: set it to the same random value for every rank (e.g. "
                           "`export ZT_STORE_TOKEN=$(openssl rand -hex 16)` and pass it on, as `mpirun -x "
                           "ZT_STORE_TOKEN` does); see docs/launch.md");
  }
  comm::HostPort at;
  if (env.store) {
    at = *env.store;
  } else {
    if (env.master_addr.empty() || env.master_port == 0) {
      return InvalidArgument(who +
                             " has no ZT_STORE, so rank 0 hosts the store at MASTER_ADDR:MASTER_PORT; set "
                             "both for every rank (MASTER_ADDR=" +
                             (env.master_addr.empty() ? std::string("<unset>") : env.master_addr) + ", MASTER_PORT=" +
                             (env.master_port ? std::to_string(env.master_port) : "<unset>") + "); see docs/launch.md");
    }
    at = comm::HostPort{env.master_addr, env.master_port};
    if (env.rank == 0) {
      // ZT_STORE_BIND when the user set it, else MASTER_ADDR (not the declared loopback default).
      std::string bind = settings::IsSet("ZT_STORE_BIND") ? settings::GetString("ZT_STORE_BIND") : env.master_addr;
      auto server = comm::TcpStoreServer::Start(bind, env.master_port, env.token);
      if (!server.ok()) {
        return server.status().WithContext("rank 0 could not host the job's store on " +
                                           comm::FormatHostPort(bind, env.master_port) +
                                           " (MASTER_PORT in use? set ZT_STORE_BIND to the interface to listen on)");
      }
      job.server = std::move(*server);
    }
  }
  auto store = comm::ConnectTcpStore(at.host, at.port, env.token, timeout);
  if (!store.ok()) {
    return store.status().WithContext(who + " could not connect to the job's store at " +
                                      comm::FormatHostPort(at.host, at.port) +
                                      (env.store ? " (ZT_STORE)" : " (MASTER_ADDR:MASTER_PORT)"));
  }
  job.store = std::move(*store);
  job.store->set_timeout(timeout);
  return job;
}

}  // namespace zt::launch
