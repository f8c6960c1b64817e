// ckpt_write_bench: checkpoint write throughput (GB/s) against a raw sequential-write baseline
// measured in the same run, on the same file system (bench/ckpt/README.md; PCcheck's Figs 8/12).
//   (a) raw: one file, large sequential pwrite()s, one fsync (buffered, and O_DIRECT where allowed);
//   (b) one checkpoint through CheckpointWriter (shard + manifest + LATEST + every fsync) for each
//       io_threads x direct_io x chunk_mb;
//   (c) K checkpoints submitted back to back with max_in_flight C (direct_io off and on), the
//       snapshots taken from a pool the way the training job takes them (a copy of the "model
//       state" into a pooled buffer).
// Repeats run in rounds (every case once per round, in an order shuffled per round with a fixed
// seed), so neither a slow spell of the shared machine nor the case before it favours one case;
// each case reports the median.
// Invariants: every measurement starts on an empty scratch directory <dir>/ckpt-bench-<pid>
// (the previous one's files removed and synced first); nothing else under <dir> is touched and the
// scratch directory is removed at exit; bad arguments, too little disk or memory, and I/O errors
// end the run with a message (exit 1), never a crash.
#include <fcntl.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ckpt/commit.h"
#include "ckpt/format.h"
#include "ckpt/manifest.h"
#include "ckpt/snapshot.h"
#include "ckpt/writer.h"
#include "core/atomic_file.h"
#include "core/status.h"

namespace zt::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr int kUnits = 8;  // the fake model's units (each: master, exp_avg, exp_avg_sq sections)
constexpr const char* kKinds[] = {"master", "exp_avg", "exp_avg_sq"};

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Args {
  std::string dir;
  double gb = 1;
  int repeats = 3;
  std::string json_path;
  std::vector<int> io_threads = {1, 2, 4, 8};
  std::vector<int> chunk_mb = {4, 16};
  std::vector<int> concurrency = {1, 2, 4};
  int k = 6;
  int conc_io_threads = 4;
  int conc_chunk_mb = 8;
  std::vector<int> conc_direct = {0, 1};
  int raw_chunk_mb = 64;
  int keep_last = 2;
};

// ---- the fake training state -------------------------------------------------------------------

struct State {
  int64_t per_section = 0;  // f32 elements per section (a multiple of 1024: sections stay contiguous)
  size_t bytes = 0;         // snapshot payload: kUnits * 3 * per_section * 4
  char* source = nullptr;   // the "model state" a snapshot copies (4096-aligned, random bytes)
  ckpt::Manifest fields;    // manifest fields matching the sections
};

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};

ckpt::Manifest MakeFields(int64_t per_section) {
  ckpt::Manifest m;
  m.world_size = 1;
  m.zero_stage = 0;
  m.precision = "fp32";
  m.layout.stage = 0;
  m.layout.world_size = 1;
  for (int u = 0; u < kUnits; ++u) {
    passes::ZeroUnit unit;
    unit.name = "bench." + std::to_string(u);
    unit.dtype = DType::kF32;
    unit.params.push_back({unit.name + ".weight", DType::kF32, Shape({per_section}), 0});
    unit.numel = per_section;
    unit.shard = per_section;
    unit.padded = per_section;
    m.layout.units.push_back(unit);
  }
  m.seed = 1;
  m.config = {{"bench", "ckpt_write_bench"}};
  return m;
}

// Builds the snapshot of `step` in `s` the way Engine::TakeSnapshot does: sections appended, state
// copied in.
void FillSnapshot(ckpt::RankSnapshot& s, const State& st, int64_t step) {
  s.step = step;
  s.rank = 0;
  s.world_size = 1;
  s.sections.clear();
  s.bytes.clear();
  s.bytes.reserve(st.bytes);
  size_t from = 0;
  for (int u = 0; u < kUnits; ++u) {
    for (const char* kind : kKinds) {
      char* p = s.AddSection(std::string(kind) + "/bench." + std::to_string(u), DType::kF32, st.per_section);
      size_t n = static_cast<size_t>(st.per_section) * 4;
      std::memcpy(p, st.source + from, n);
      from += n;
    }
  }
}

// ---- file-system helpers -----------------------------------------------------------------------

Status ErrnoStatus(const std::string& what, const std::string& path) {
  return Unavailable(what + " " + path + ": " + std::strerror(errno));
}

// Removes `path` recursively and syncs the file system, so the next measurement does not pay for
// this one's deletions.
Status Clean(const std::string& path, const std::string& root) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return Unavailable("cannot remove " + path + ": " + ec.message());
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return ErrnoStatus("cannot open", root);
  int rc = ::syncfs(fd);
  ::close(fd);
  if (rc != 0) return ErrnoStatus("syncfs failed on", root);
  return OkStatus();
}

std::string FsType(const std::string& path) {
  struct statfs s {};
  if (::statfs(path.c_str(), &s) != 0) return "unknown";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53: return "ext4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x01021994: return "tmpfs";
    case 0x6969: return "nfs";
    case 0x794C7630: return "overlayfs";
    case 0x65735546: return "fuse";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "0x%lx", static_cast<unsigned long>(s.f_type));
      return buf;
    }
  }
}

// MemAvailable from /proc/meminfo, in bytes (0 when unknown).
uint64_t MemAvailable() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

json LoadAverage() {
  double l[3] = {0, 0, 0};
  if (::getloadavg(l, 3) != 3) return nullptr;
  return {l[0], l[1], l[2]};
}

// ---- (a) raw sequential write ------------------------------------------------------------------

struct RawResult {
  bool refused = false;  // O_DIRECT refused by the file system
  double seconds = 0;
};

StatusOr<RawResult> RawWrite(const std::string& path, const char* data, size_t n, size_t chunk, bool direct) {
  RawResult r;
  auto t0 = Clock::now();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (direct ? O_DIRECT : 0), 0644);
  if (fd < 0 && direct && errno == EINVAL) {
    r.refused = true;
    return r;
  }
  if (fd < 0) return ErrnoStatus("cannot create", path);
  for (size_t off = 0; off < n;) {
    size_t len = std::min(chunk, n - off);
    ssize_t w = ::pwrite(fd, data + off, len, static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      Status s = ErrnoStatus("pwrite failed on", path);
      ::close(fd);
      return s;
    }
    off += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0) {
    Status s = ErrnoStatus("fsync failed on", path);
    ::close(fd);
    return s;
  }
  if (::close(fd) != 0) return ErrnoStatus("close failed on", path);
  r.seconds = Since(t0);
  return r;
}

// ---- (b), (c) through CheckpointWriter ---------------------------------------------------------

struct WriterCase {
  int io_threads = 4;
  int chunk_mb = 8;
  bool direct = false;
  int max_in_flight = 1;
  int k = 1;  // checkpoints submitted back to back
};

struct WriterSample {
  double seconds = 0;  // first Submit to Flush returning (K checkpoints, committed)
  double stall = 0;    // time the producer was blocked in Acquire + Submit
  double copy = 0;     // time the producer spent copying state into snapshots 2..K
  int max_in_flight = 0;
};

StatusOr<WriterSample> RunWriter(const std::string& dir, ckpt::SnapshotPool& pool, const State& st,
                                 const WriterCase& c, int keep_last) {
  ckpt::WriterOptions o;
  o.dir = dir;
  o.pool = &pool;
  o.max_in_flight = c.max_in_flight;
  o.io_threads = c.io_threads;
  o.chunk_bytes = static_cast<size_t>(c.chunk_mb) << 20;
  o.direct_io = c.direct;
  o.keep_last = keep_last;
  ZT_ASSIGN_OR_RETURN(std::unique_ptr<ckpt::CheckpointWriter> w, ckpt::CheckpointWriter::Open(o));

  WriterSample sample;
  std::unique_ptr<ckpt::RankSnapshot> snap = pool.Acquire();
  FillSnapshot(*snap, st, 1);
  auto t0 = Clock::now();
  for (int64_t step = 1; step <= c.k; ++step) {
    if (step > 1) {
      auto ta = Clock::now();
      snap = pool.Acquire();
      sample.stall += Since(ta);
      auto tc = Clock::now();
      FillSnapshot(*snap, st, step);
      sample.copy += Since(tc);
    }
    auto ts = Clock::now();
    Status s = w->Submit(std::move(snap), st.fields);
    sample.stall += Since(ts);
    if (!s.ok()) return s.WithContext("checkpoint writer in " + dir);
  }
  Status flushed = w->Flush();
  sample.seconds = Since(t0);
  if (!flushed.ok()) return flushed.WithContext("checkpoint writer in " + dir);
  ckpt::WriterStats stats = w->stats();
  sample.max_in_flight = stats.max_in_flight_seen;
  w.reset();
  if (stats.committed != c.k)
    return Internal("the writer committed " + std::to_string(stats.committed) + " of " + std::to_string(c.k) +
                    " checkpoints in " + dir);
  ZT_ASSIGN_OR_RETURN(int64_t latest, ckpt::ReadLatestStep(*ckpt::DefaultFs(), dir));
  if (latest != c.k)
    return Internal("LATEST in " + dir + " names step " + std::to_string(latest) + ", not " + std::to_string(c.k));
  return sample;
}

// ---- results -----------------------------------------------------------------------------------

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

struct Case {
  std::string group;  // "raw", "writer", "concurrent"
  WriterCase w;
  bool raw_direct = false;
  bool refused = false;
  std::vector<WriterSample> samples;
  double total_bytes = 0;  // bytes written per sample (payload)

  std::vector<double> Seconds() const {
    std::vector<double> v;
    for (const auto& s : samples) v.push_back(s.seconds);
    return v;
  }
  double MedianGbps() const {
    double t = Median(Seconds());
    return t > 0 ? total_bytes / t / 1e9 : 0;
  }
  std::string Label() const {
    if (group == "raw") return std::string("raw ") + (raw_direct ? "O_DIRECT" : "buffered");
    char buf[128];
    std::snprintf(buf, sizeof(buf), "%s io=%d direct=%s chunk=%dMiB C=%d K=%d", group.c_str(), w.io_threads,
                  w.direct ? "on" : "off", w.chunk_mb, w.max_in_flight, w.k);
    return buf;
  }
};

// raw_gbps: the raw baseline in the case's mode (0: none); raw_buffered_gbps: the buffered one.
json CaseJson(const Case& c, double raw_gbps, double raw_buffered_gbps) {
  json samples = json::array();
  for (const auto& s : c.samples)
    samples.push_back({{"seconds", s.seconds}, {"stall_s", s.stall}, {"copy_s", s.copy},
                       {"max_in_flight_seen", s.max_in_flight}});
  json j = {{"label", c.Label()}, {"bytes", c.total_bytes}, {"samples", samples}};
  if (c.group == "raw") {
    j["direct_io"] = c.raw_direct;
    j["refused"] = c.refused;
  } else {
    j["io_threads"] = c.w.io_threads;
    j["chunk_mb"] = c.w.chunk_mb;
    j["direct_io"] = c.w.direct;
    j["max_in_flight"] = c.w.max_in_flight;
    j["k"] = c.w.k;
  }
  if (!c.refused && !c.samples.empty()) {
    j["median_seconds"] = Median(c.Seconds());
    j["median_gbps"] = c.MedianGbps();
    if (raw_gbps > 0) j["pct_of_raw_same_mode"] = 100 * c.MedianGbps() / raw_gbps;
    if (raw_buffered_gbps > 0) j["pct_of_raw_buffered"] = 100 * c.MedianGbps() / raw_buffered_gbps;
  }
  return j;
}

std::string Pct(double gbps, double raw) {
  if (raw <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.0f%%", 100 * gbps / raw);
  return buf;
}

// raw[direct]: the raw baseline's median GB/s in that mode (0 when refused).
void PrintTables(const std::vector<Case>& cases, const double raw[2], const Args& a, size_t bytes) {
  std::printf("\n## Checkpoint write throughput (%.3f GB snapshot, median of %d, dir %s, %s)\n\n", bytes / 1e9,
              a.repeats, a.dir.c_str(), FsType(a.dir).c_str());
  std::printf("### (a) raw sequential write (%d MiB pwrite()s, one fsync)\n\n", a.raw_chunk_mb);
  std::printf("| mode | GB/s | min-max GB/s |\n|---|---:|---|\n");
  auto range = [](const Case& c) {
    auto v = c.Seconds();
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.2f-%.2f", c.total_bytes / *std::max_element(v.begin(), v.end()) / 1e9,
                  c.total_bytes / *std::min_element(v.begin(), v.end()) / 1e9);
    return std::string(buf);
  };
  for (const auto& c : cases) {
    if (c.group != "raw") continue;
    if (c.refused) {
      std::printf("| %s | refused by the file system | - |\n", c.raw_direct ? "O_DIRECT" : "buffered");
    } else {
      std::printf("| %s | %.2f | %s |\n", c.raw_direct ? "O_DIRECT" : "buffered", c.MedianGbps(), range(c).c_str());
    }
  }
  std::printf("\n### (b) one checkpoint through CheckpointWriter (commit included)\n\n");
  std::printf("| io_threads | direct_io | chunk_mb | GB/s | of raw (same mode) | min-max GB/s |\n|---:|---|---:|---:|---:|---|\n");
  for (const auto& c : cases) {
    if (c.group != "writer") continue;
    std::printf("| %d | %s | %d | %.2f | %s | %s |\n", c.w.io_threads, c.w.direct ? "on" : "off", c.w.chunk_mb,
                c.MedianGbps(), Pct(c.MedianGbps(), raw[c.w.direct]).c_str(), range(c).c_str());
  }
  std::printf("\n### (c) K=%d checkpoints back to back (io_threads %d, chunk_mb %d, keep_last %d)\n\n", a.k,
              a.conc_io_threads, a.conc_chunk_mb, a.keep_last);
  std::printf("| direct_io | C (max_in_flight) | total GB/s | of raw (same mode) | max in flight seen | "
              "producer blocked s | producer copy s |\n|---|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& c : cases) {
    if (c.group != "concurrent") continue;
    int seen = 0;
    std::vector<double> stall, copy;
    for (const auto& s : c.samples) {
      seen = std::max(seen, s.max_in_flight);
      stall.push_back(s.stall);
      copy.push_back(s.copy);
    }
    std::printf("| %s | %d | %.2f | %s | %d | %.2f | %.2f |\n", c.w.direct ? "on" : "off", c.w.max_in_flight,
                c.MedianGbps(), Pct(c.MedianGbps(), raw[c.w.direct]).c_str(), seen, Median(stall), Median(copy));
  }
  std::fflush(stdout);
}

// ---- driver ------------------------------------------------------------------------------------

Status CheckArgs(const Args& a) {
  if (a.dir.empty()) return InvalidArgument("--dir is required: a directory on the file system to measure");
  std::error_code ec;
  if (!std::filesystem::is_directory(a.dir, ec))
    return InvalidArgument("--dir " + a.dir + " is not an existing directory; create it first");
  if (!(a.gb >= 0.01 && a.gb <= 1024)) return InvalidArgument("--gb must be in [0.01, 1024], got " + std::to_string(a.gb));
  if (a.repeats < 1 || a.repeats > 100) return InvalidArgument("--repeats must be 1..100");
  if (a.k < 1 || a.k > 1000) return InvalidArgument("--k must be 1..1000");
  auto in = [](const std::vector<int>& v, int lo, int hi, const char* name) -> Status {
    if (v.empty()) return InvalidArgument(std::string(name) + " needs at least one value");
    for (int x : v)
      if (x < lo || x > hi)
        return InvalidArgument(std::string(name) + " values must be " + std::to_string(lo) + ".." + std::to_string(hi) +
                               ", got " + std::to_string(x));
    return OkStatus();
  };
  ZT_RETURN_IF_ERROR(in(a.io_threads, 1, 256, "--io-threads"));
  ZT_RETURN_IF_ERROR(in(a.chunk_mb, 1, 4096, "--chunk-mb"));
  ZT_RETURN_IF_ERROR(in(a.concurrency, 1, 64, "--concurrency"));
  ZT_RETURN_IF_ERROR(in({a.conc_io_threads}, 1, 256, "--conc-io-threads"));
  ZT_RETURN_IF_ERROR(in({a.conc_chunk_mb, a.raw_chunk_mb}, 1, 4096, "--conc-chunk-mb/--raw-chunk-mb"));
  ZT_RETURN_IF_ERROR(in(a.conc_direct, 0, 1, "--conc-direct-io"));
  if (a.keep_last < 0) return InvalidArgument("--keep-last must be >= 0");
  return OkStatus();
}

Status Run(const Args& a) {
  ZT_RETURN_IF_ERROR(CheckArgs(a));
  State st;
  st.per_section = static_cast<int64_t>(a.gb * 1e9 / (kUnits * 3 * 4)) / 1024 * 1024;
  st.bytes = static_cast<size_t>(st.per_section) * 4 * kUnits * 3;
  st.fields = MakeFields(st.per_section);
  const int max_c = *std::max_element(a.concurrency.begin(), a.concurrency.end());

  // Memory: the source state plus max_c + 1 pooled snapshots. Disk: the most a case keeps at once.
  uint64_t need_mem = static_cast<uint64_t>(st.bytes) * (max_c + 2);
  uint64_t avail_mem = MemAvailable();
  if (avail_mem > 0 && need_mem > avail_mem * 0.9)
    return FailedPrecondition("this run needs " + std::to_string(need_mem >> 20) + " MiB of memory (" +
                              std::to_string(max_c + 2) + " x " + std::to_string(st.bytes >> 20) + " MiB) but " +
                              std::to_string(avail_mem >> 20) + " MiB are available; lower --gb or --concurrency");
  struct statvfs vfs {};
  if (::statvfs(a.dir.c_str(), &vfs) != 0) return ErrnoStatus("cannot stat the file system of", a.dir);
  uint64_t free_disk = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  uint64_t need_disk = static_cast<uint64_t>(st.bytes) * (std::max(a.keep_last, 1) + max_c + 1) + (256ull << 20);
  if (a.keep_last == 0) need_disk = static_cast<uint64_t>(st.bytes) * (a.k + 1) + (256ull << 20);
  if (need_disk > free_disk)
    return FailedPrecondition(a.dir + " has " + std::to_string(free_disk >> 20) + " MiB free but this run may need " +
                              std::to_string(need_disk >> 20) + " MiB; lower --gb or use another --dir");

  const std::string root = ckpt::JoinPath(a.dir, "ckpt-bench-" + std::to_string(::getpid()));
  std::error_code made;
  if (!std::filesystem::create_directory(root, made)) {
    if (made) return Unavailable("cannot create the scratch directory " + root + ": " + made.message());
    return FailedPrecondition("scratch directory " + root + " already exists; remove it");
  }
  struct RemoveOnExit {  // on every path out, errors included
    std::string path;
    ~RemoveOnExit() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } remove_scratch{root};
  const std::string ckpt_dir = ckpt::JoinPath(root, "ckpt");
  const std::string raw_file = ckpt::JoinPath(root, "raw.bin");

  // The "model state": random bytes (nothing compresses or deduplicates them).
  std::unique_ptr<char, FreeDeleter> source(static_cast<char*>(std::aligned_alloc(ckpt::kDirectIoAlignment, st.bytes)));
  if (!source) return FailedPrecondition("cannot allocate " + std::to_string(st.bytes >> 20) + " MiB; lower --gb");
  st.source = source.get();
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i + 8 <= st.bytes; i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::memcpy(st.source + i, &x, 8);
  }
  // Pooled snapshot buffers, allocated and touched once (as in a job after its first checkpoint).
  ckpt::SnapshotPool pool(max_c + 1);
  {
    std::vector<std::unique_ptr<ckpt::RankSnapshot>> warm;
    for (int i = 0; i <= max_c; ++i) {
      warm.push_back(pool.Acquire());
      FillSnapshot(*warm.back(), st, 1);
    }
    bool aligned = reinterpret_cast<uintptr_t>(warm.front()->bytes.data()) % ckpt::kDirectIoAlignment == 0;
    std::fprintf(stderr, "snapshot: %zu bytes in %d sections; buffer %s4096-aligned (O_DIRECT %s)\n", st.bytes,
                 kUnits * 3, aligned ? "" : "not ", aligned ? "writes it directly" : "goes through bounce buffers");
    for (auto& s : warm) pool.Release(std::move(s));
  }

  std::vector<Case> cases;
  for (bool direct : {false, true}) {
    Case c;
    c.group = "raw";
    c.raw_direct = direct;
    cases.push_back(c);
  }
  for (int t : a.io_threads)
    for (bool direct : {false, true})
      for (int mb : a.chunk_mb) {
        Case c;
        c.group = "writer";
        c.w = {t, mb, direct, 1, 1};
        cases.push_back(c);
      }
  for (int direct : a.conc_direct)
    for (int cc : a.concurrency) {
      Case c;
      c.group = "concurrent";
      c.w = {a.conc_io_threads, a.conc_chunk_mb, direct != 0, cc, a.k};
      cases.push_back(c);
    }
  for (auto& c : cases) c.total_bytes = static_cast<double>(st.bytes) * (c.group == "concurrent" ? c.w.k : 1);

  json load_start = LoadAverage();
  auto started = Clock::now();
  Status failed;
  for (int r = 1; r <= a.repeats && failed.ok(); ++r) {
    std::vector<size_t> order(cases.size());
    std::iota(order.begin(), order.end(), 0);
    std::mt19937 rng(static_cast<unsigned>(r));
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t index : order) {
      Case& c = cases[index];
      if (c.refused) continue;
      Status cleaned = Clean(ckpt_dir, root);
      if (cleaned.ok()) cleaned = Clean(raw_file, root);
      if (!cleaned.ok()) {
        failed = cleaned;
        break;
      }
      WriterSample s;
      if (c.group == "raw") {
        auto rr = RawWrite(raw_file, st.source, st.bytes, static_cast<size_t>(a.raw_chunk_mb) << 20, c.raw_direct);
        if (!rr.ok()) {
          failed = rr.status();
          break;
        }
        if (rr->refused) {
          c.refused = true;
          std::fprintf(stderr, "[%d/%d] %s: refused by the file system\n", r, a.repeats, c.Label().c_str());
          continue;
        }
        s.seconds = rr->seconds;
      } else {
        auto ws = RunWriter(ckpt_dir, pool, st, c.w, a.keep_last);
        if (!ws.ok()) {
          failed = ws.status();
          break;
        }
        s = *ws;
      }
      c.samples.push_back(s);
      std::fprintf(stderr, "[%d/%d] %-60s %7.3f s  %6.2f GB/s\n", r, a.repeats, c.Label().c_str(), s.seconds,
                   c.total_bytes / s.seconds / 1e9);
    }
  }
  Status cleaned = Clean(root, a.dir);
  ZT_RETURN_IF_ERROR(failed);
  ZT_RETURN_IF_ERROR(cleaned);

  const double raw[2] = {cases[0].refused ? 0 : cases[0].MedianGbps(), cases[1].refused ? 0 : cases[1].MedianGbps()};
  PrintTables(cases, raw, a, st.bytes);

  if (!a.json_path.empty()) {
    struct utsname u {};
    ::uname(&u);
    char host[256] = {0};
    ::gethostname(host, sizeof(host) - 1);
    json j;
    j["bench"] = "ckpt_write_bench";
    j["machine"] = {{"hostname", host},
                    {"kernel", std::string(u.release)},
                    {"cpus", std::thread::hardware_concurrency()},
                    {"load_average_start", load_start},
                    {"load_average_end", LoadAverage()}};
    j["dir"] = a.dir;
    j["fs_type"] = FsType(a.dir);
    j["snapshot_bytes"] = st.bytes;
    j["repeats"] = a.repeats;
    j["wall_seconds"] = Since(started);
    j["raw_chunk_mb"] = a.raw_chunk_mb;
    j["keep_last"] = a.keep_last;
    j["raw_buffered_gbps"] = raw[0];
    j["raw_direct_gbps"] = raw[1];
    j["raw"] = json::array();
    j["writer"] = json::array();
    j["concurrent"] = json::array();
    for (const auto& c : cases) {
      bool direct = c.group == "raw" ? c.raw_direct : c.w.direct;
      j[c.group].push_back(CaseJson(c, raw[direct], raw[0]));
    }
    Status w = WriteFileAtomically(a.json_path, j.dump(2) + "\n");
    if (!w.ok()) return w.WithContext("--json");
  }
  return OkStatus();
}

}  // namespace
}  // namespace zt::bench

int main(int argc, char** argv) {
  zt::bench::Args a;
  CLI::App app{"Checkpoint write throughput against a raw sequential-write baseline (bench/ckpt/README.md)"};
  app.add_option("--dir", a.dir, "an existing directory on the file system to measure (a scratch subdirectory is made and removed)")
      ->required();
  app.add_option("--gb", a.gb, "snapshot size in GB (10^9 bytes)")->capture_default_str();
  app.add_option("--repeats", a.repeats, "measurements per case; the median is reported")->capture_default_str();
  app.add_option("--json", a.json_path, "also write every sample as JSON here");
  app.add_option("--io-threads", a.io_threads, "(b) io_threads values")->delimiter(',');
  app.add_option("--chunk-mb", a.chunk_mb, "(b) chunk_mb values")->delimiter(',');
  app.add_option("--concurrency", a.concurrency, "(c) max_in_flight values")->delimiter(',');
  app.add_option("--k", a.k, "(c) checkpoints submitted back to back")->capture_default_str();
  app.add_option("--conc-io-threads", a.conc_io_threads, "(c) io_threads")->capture_default_str();
  app.add_option("--conc-chunk-mb", a.conc_chunk_mb, "(c) chunk_mb")->capture_default_str();
  app.add_option("--conc-direct-io", a.conc_direct, "(c) direct_io values (0 off, 1 on)")->delimiter(',');
  app.add_option("--raw-chunk-mb", a.raw_chunk_mb, "(a) pwrite size")->capture_default_str();
  app.add_option("--keep-last", a.keep_last, "(b, c) committed checkpoints kept (0: all)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  zt::Status s = zt::bench::Run(a);
  if (!s.ok()) {
    std::fprintf(stderr, "ckpt_write_bench: error: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}
