// The one table of ZT_* settings, and their parsing.
#include "core/settings.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace zt::settings {
namespace {

constexpr Info kSettings[] = {
    {"ZT_LOG_LEVEL", "info", "least severe log level printed: debug, info, warning, error"},
    {"ZT_NUM_THREADS", "0", "CPU threads for kernels (OpenMP); 0 uses every core"},
    {"ZT_DUMP_IR", "", "comma-separated pass names after which the IR is dumped, or 'all'"},
    {"ZT_DUMP_DIR", "", "directory for IR dumps; empty prints them to stderr"},
    {"ZT_EXEC_MEMORY", "arena",
     "executor memory mode: 'arena' (the static plan) or 'dynamic' (allocate each value at its "
     "definition, free after its last use; for checking the plan)"},
    {"ZT_COMM_TIMEOUT_S", "300",
     "seconds any rendezvous or collective may wait before failing with an error that names the "
     "ranks it waited for (the one timeout policy of comm/ and launch/)"},
    {"ZT_STORE", "", "host:port of the job's rendezvous store (set by `ztrain launch` for its workers)"},
    {"ZT_STORE_TOKEN", "", "the job's random token; the store refuses clients that do not present it"},
    {"ZT_STORE_BIND", "127.0.0.1",
     "address the rendezvous store listens on; set 0.0.0.0 (or an interface) for multi-node jobs"},
    {"ZT_SHM_PREFIX", "",
     "POSIX shared-memory name prefix of the job's host-memory checkpoint tier ('/name'); `ztrain launch` "
     "sets a fresh one per job unless given; unset in a worker: no host-memory tier"},
    {"ZT_RESTART_COUNT", "0",
     "which attempt of the job this worker belongs to (set by `ztrain launch --max-restarts`; 0 first)"},
    {"ZT_PROFILE", "0",
     "1: time every node of the step (no CUDA graph; the device is synchronized after each node) and "
     "print a per-op table at the end of `ztrain train`"},
    {"ZT_ATTENTION", "auto",
     "CUDA attention path: 'auto' (cuDNN's fused flash attention where it runs, our kernels "
     "elsewhere), 'cudnn' (the same, warning once per case that falls back and why) or 'fallback' "
     "(our kernels only)"},
    {"ZT_DEVICE", "auto",
     "where `ztrain train` runs: 'auto' (the GPU LOCAL_RANK when CUDA is built and a GPU is present, else "
     "the CPU), 'cpu', or 'cuda' (a GPU or an error)"},
    {"ZT_CUDA_GRAPHS", "1",
     "capture each training step into a CUDA graph and replay it (CUDA backend, arena memory mode); 0 runs "
     "every step kernel by kernel"},
    {"ZT_FUSION", "1",
     "which fusion passes rewrite the step (passes/fusion.h): 1 the default set (add_norm, matmul_gelu, "
     "adamw), all, 0 none, or a comma-separated list of add_norm, matmul_gelu, matmul_bgrad, adamw"},
};

const Info* Find(std::string_view name) {
  for (const Info& s : kSettings)
    if (s.name == name) return &s;
  return nullptr;
}

[[noreturn]] void DieBadSetting(const Status& s) {
  std::fprintf(stderr, "ztrain: error: %s\n", s.message().c_str());
  std::exit(2);
}

}  // namespace

std::span<const Info> All() { return kSettings; }

std::string GetString(std::string_view name) {
  const Info* info = Find(name);
  ZT_CHECK(info != nullptr) << "setting " << name << " is not declared in core/settings.cc";
  std::string key(name);
  const char* v = std::getenv(key.c_str());
  return v ? std::string(v) : std::string(info->default_value);
}

bool IsSet(std::string_view name) {
  ZT_CHECK(Find(name) != nullptr) << "setting " << name << " is not declared in core/settings.cc";
  const char* v = std::getenv(std::string(name).c_str());
  return v != nullptr && *v != '\0';
}

StatusOr<int64_t> GetInt(std::string_view name) {
  std::string v = GetString(name);
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0)
    return InvalidArgument(std::string(name) + "='" + v + "' is not an integer");
  return static_cast<int64_t>(x);
}

StatusOr<double> GetDouble(std::string_view name) {
  std::string v = GetString(name);
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0')
    return InvalidArgument(std::string(name) + "='" + v + "' is not a number");
  return x;
}

StatusOr<bool> GetBool(std::string_view name) {
  std::string v = GetString(name);
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off" || v.empty()) return false;
  return InvalidArgument(std::string(name) + "='" + v +
                         "' is not a boolean; use 1/0, true/false, yes/no or on/off");
}

std::vector<std::string> UnknownInEnvironment() {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    if (kv.substr(0, 3) != "ZT_") continue;
    std::string_view key = kv.substr(0, kv.find('='));
    if (!Find(key)) out.emplace_back(key);
  }
  return out;
}

int NumThreads() {
  auto v = GetInt("ZT_NUM_THREADS");
  if (!v.ok()) DieBadSetting(v.status());
  if (*v < 0) DieBadSetting(InvalidArgument("ZT_NUM_THREADS must be >= 0"));
  return static_cast<int>(*v);
}

std::string LogLevel() { return GetString("ZT_LOG_LEVEL"); }
std::string DumpIrAfter() { return GetString("ZT_DUMP_IR"); }
std::string DumpDir() { return GetString("ZT_DUMP_DIR"); }

std::chrono::milliseconds CommTimeout() {
  auto v = GetDouble("ZT_COMM_TIMEOUT_S");
  if (!v.ok()) DieBadSetting(v.status());
  if (!(*v > 0)) DieBadSetting(InvalidArgument("ZT_COMM_TIMEOUT_S must be > 0 seconds"));
  return std::chrono::milliseconds(static_cast<int64_t>(*v * 1000.0));
}

std::string HelpText() {
  std::string s = "Environment settings:\n";
  for (const Info& i : kSettings) {
    s += "  " + std::string(i.name) + " (default '" + std::string(i.default_value) + "')\n      " +
         std::string(i.help) + "\n";
  }
  return s;
}

}  // namespace zt::settings
