// Crash points of the commit protocol: for EVERY kill point of FaultInjectingFs, at every hit it
// is reached while two ranks (threads sharing a MemoryStore) checkpoint steps 2 and 3 (after step 1
// was committed), and for writes also with a partial write, the test crashes there and then
// checks what a restarted job finds with a fresh PosixFs over the same directory:
//   - LATEST names a checkpoint that Verify accepts whole and that holds exactly the bytes
//     submitted for its step (every element of every section, and the manifest fields);
//   - that step is the newest whose commit point was passed before the crash: a CommitRecorder
//     between the writer and the fault fs sees each rename onto LATEST and each directory fsync
//     that returned OK, independently of what the writer believes;
//   - the writer said a checkpoint was done exactly when its commit point was passed;
//   - a new writer opening the directory collects every leftover, and its next commit works
//     (after it, the directory holds LATEST and that one checkpoint, nothing else).
// Two crash models:
//   kMachine  - one fault fs shared by both ranks, lose_unsynced on: the machine dies (power cut);
//               only what was fsynced (and renames/mkdirs whose directory was fsynced) survives.
//   kRank0/1  - each rank has its own fault fs, lose_unsynced off, and only one rank's is armed:
//               that rank's process dies (its store calls fail from then on), the other rank lives
//               on and sees its peer time out; the page cache keeps everything, so a LATEST rename
//               that completed counts as committed.
// Invariant checked: every crash point leaves LATEST naming a whole, verified checkpoint.
#include <gtest/gtest.h>

#include <barrier>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "ckpt/commit.h"
#include "ckpt/fault_fs.h"
#include "ckpt/format.h"
#include "ckpt/reader.h"
#include "ckpt/writer.h"
#include "ckpt_test_util.h"
#include "comm/memory_store.h"

namespace zt::ckpt {
namespace {

using testing::ExpectCheckpointHolds;
using testing::MakeSnapshot;
using testing::RunRanks;
using testing::TempDir;
using testing::TestFields;
using testing::Tree;

constexpr int kWorld = 2;
constexpr int kKeepLast = 1;  // every commit also collects the previous checkpoint: gc.* points
constexpr int64_t kAfterRestart = 4;

enum class Mode { kMachine, kRank0, kRank1 };

std::string ModeName(Mode m) {
  switch (m) {
    case Mode::kMachine:
      return "Machine";
    case Mode::kRank0:
      return "Rank0";
    case Mode::kRank1:
      return "Rank1";
  }
  return "?";
}

int VictimOf(Mode m) { return m == Mode::kRank0 ? 0 : m == Mode::kRank1 ? 1 : -1; }

// Forwards to another file system and records the commit points passed through it: a rename onto
// <dir>/LATEST that returned OK (its step read back from the real file), and the first fsync of
// <dir> that returned OK after it.
class CommitRecorder final : public FileSystem {
 public:
  CommitRecorder(FileSystem* base, std::string dir) : base_(base), dir_(std::move(dir)) {}

  std::vector<int64_t> renamed() const {
    std::lock_guard<std::mutex> l(mu_);
    return renamed_;
  }
  std::vector<int64_t> synced() const {
    std::lock_guard<std::mutex> l(mu_);
    return synced_;
  }

  StatusOr<std::unique_ptr<WritableFile>> Create(const std::string& path, const CreateOptions& o) override {
    return base_->Create(path, o);
  }
  using FileSystem::Create;
  StatusOr<std::unique_ptr<ReadableFile>> OpenRead(const std::string& p) override { return base_->OpenRead(p); }
  Status Rename(const std::string& from, const std::string& to) override {
    Status s = base_->Rename(from, to);
    if (s.ok() && to == JoinPath(dir_, kLatestName)) {
      // Read through the real file system: the fault fs may have died since (then the fsync
      // below fails and nothing counts as committed).
      PosixFs real;
      auto step = ReadLatestStep(real, dir_);
      std::lock_guard<std::mutex> l(mu_);
      if (step.ok() && *step >= 0) {
        renamed_.push_back(*step);
        pending_ = *step;
      }
    }
    return s;
  }
  Status SyncDir(const std::string& d) override {
    Status s = base_->SyncDir(d);
    std::lock_guard<std::mutex> l(mu_);
    if (s.ok() && d == dir_ && pending_ >= 0) {
      synced_.push_back(pending_);
      pending_ = -1;
    }
    return s;
  }
  Status Unlink(const std::string& p) override { return base_->Unlink(p); }
  Status RemoveDir(const std::string& p) override { return base_->RemoveDir(p); }
  Status MakeDir(const std::string& p) override { return base_->MakeDir(p); }
  StatusOr<std::vector<DirEntry>> List(const std::string& p) override { return base_->List(p); }
  StatusOr<uint64_t> FileSize(const std::string& p) override { return base_->FileSize(p); }
  StatusOr<bool> Exists(const std::string& p) override { return base_->Exists(p); }

 private:
  FileSystem* base_;
  std::string dir_;
  mutable std::mutex mu_;
  std::vector<int64_t> renamed_, synced_;
  int64_t pending_ = -1;
};

// One rank's view of the shared store in the one-rank-crashes model. The dead rank's calls fail
// once its file system has crashed (the process is gone). The survivor's blocking calls wait as
// usual, but once the peer is dead a wait that is still unsatisfied ends at once with the
// timeout's error instead of after the full timeout (the outcome is the same; the test is faster).
class CrashAwareStore final : public comm::Store {
 public:
  CrashAwareStore(comm::Store* base, const FaultInjectingFs* victim_fs, bool is_victim)
      : base_(base), victim_fs_(victim_fs), is_victim_(is_victim) {
    set_timeout(base->timeout());
  }
  Status Set(const std::string& key, const std::string& value) override {
    if (Dead()) return Unavailable("this rank's process died");
    return base_->Set(key, value);
  }
  StatusOr<std::string> Get(const std::string& key) override {
    ZT_RETURN_IF_ERROR(Wait({key}, timeout()));
    return base_->Get(key);
  }
  StatusOr<int64_t> Add(const std::string& key, int64_t delta) override {
    if (Dead()) return Unavailable("this rank's process died");
    return base_->Add(key, delta);
  }
  Status Wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (Dead()) return Unavailable("this rank's process died");
      const bool peer_dead = victim_fs_->crashed();
      Status s = base_->Wait(keys, std::chrono::milliseconds(peer_dead ? 0 : 10));
      if (s.ok() || peer_dead || std::chrono::steady_clock::now() >= deadline) return s;
    }
  }
  StatusOr<bool> Delete(const std::string& key) override {
    if (Dead()) return Unavailable("this rank's process died");
    return base_->Delete(key);
  }
  using Store::Wait;

 private:
  bool Dead() const { return is_victim_ && victim_fs_->crashed(); }
  comm::Store* base_;
  const FaultInjectingFs* victim_fs_;
  bool is_victim_;
};

// What one crash case did.
struct CaseResult {
  bool crashed = false;
  std::string crash_point;
  std::map<std::string, int> hits_before_arm;  // on the armed file system
  std::map<std::string, int> hits_at_end;
  std::vector<int64_t> renamed, synced;      // rank 0's commit points (CommitRecorder)
  std::set<int64_t> reported_done;           // rank 0's on_done(step, OK)
  std::vector<Status> flushed;               // per rank: the first error of steps 2-3, or Flush's
};

WriterOptions Options(const std::string& dir, int rank, comm::Store* store, FileSystem* fs) {
  WriterOptions o;
  o.dir = dir;
  o.rank = rank;
  o.world_size = kWorld;
  o.store = store;
  o.fs = fs;
  o.keep_last = kKeepLast;
  o.max_in_flight = 2;  // steps 2 and 3 overlap
  o.io_threads = 2;
  o.chunk_bytes = 4096;  // several writes per shard
  return o;
}

// Commits step 1 cleanly, then arms (point, hit) (no arming when point is empty) and checkpoints
// steps 2 and 3.
CaseResult RunCase(const std::string& dir, Mode mode, const std::string& point, int hit, bool partial) {
  CaseResult res;
  PosixFs posix;
  const int victim = VictimOf(mode);
  FaultInjectingFs::Options fo;
  fo.lose_unsynced = mode == Mode::kMachine;
  std::vector<std::unique_ptr<FaultInjectingFs>> faults;
  faults.push_back(std::make_unique<FaultInjectingFs>(&posix, fo));
  if (mode != Mode::kMachine) faults.push_back(std::make_unique<FaultInjectingFs>(&posix, fo));
  auto fault_of = [&](int rank) { return mode == Mode::kMachine ? faults[0].get() : faults[rank].get(); };
  FaultInjectingFs* armed = mode == Mode::kMachine ? faults[0].get() : faults[victim].get();
  CommitRecorder recorder(fault_of(0), dir);

  comm::MemoryStore shared;
  shared.set_timeout(std::chrono::seconds(20));
  std::vector<std::unique_ptr<CrashAwareStore>> views;
  for (int r = 0; r < kWorld; ++r)
    views.push_back(std::make_unique<CrashAwareStore>(&shared, armed, mode != Mode::kMachine && r == victim));

  std::mutex mu;
  std::barrier sync(kWorld, [&]() noexcept {
    // Between step 1 (flushed on both ranks) and steps 2-3: nothing is in flight.
    res.hits_before_arm = armed->all_hits();
    if (!point.empty()) armed->Arm(point, hit, partial);
  });
  res.flushed.resize(kWorld);
  RunRanks(kWorld, [&](int rank) {
    FileSystem* fs = rank == 0 ? static_cast<FileSystem*>(&recorder) : fault_of(rank);
    comm::Store* store = mode == Mode::kMachine ? static_cast<comm::Store*>(&shared) : views[rank].get();
    WriterOptions o = Options(dir, rank, store, fs);
    if (rank == 0)
      o.on_done = [&](int64_t step, const Status& s) {
        std::lock_guard<std::mutex> l(mu);
        if (s.ok()) res.reported_done.insert(step);
      };
    auto w = CheckpointWriter::Open(o);
    if (!w.ok()) {
      ADD_FAILURE() << "rank " << rank << ": " << w.status().ToString();
      sync.arrive_and_drop();
      return;
    }
    Status first = (*w)->Submit(MakeSnapshot(1, rank, kWorld), TestFields(kWorld, 1));
    if (first.ok()) first = (*w)->Flush();
    EXPECT_TRUE(first.ok()) << "rank " << rank << ", step 1 (before arming): " << first.ToString();
    sync.arrive_and_wait();
    Status s;
    for (int64_t step : {2, 3}) {
      Status sub = (*w)->Submit(MakeSnapshot(step, rank, kWorld), TestFields(kWorld, step));
      if (s.ok()) s = sub;
    }
    Status f = (*w)->Flush();
    std::lock_guard<std::mutex> l(mu);
    res.flushed[rank] = s.ok() ? f : s;
  });
  res.crashed = armed->crashed();
  res.crash_point = armed->crash_point();
  res.hits_at_end = armed->all_hits();
  res.renamed = recorder.renamed();
  res.synced = recorder.synced();
  return res;
}

// Times each point is reached on the armed file system during steps 2 and 3, without a crash.
const std::map<std::string, int>& DryRunHits(Mode mode) {
  static std::mutex mu;
  static std::map<Mode, std::map<std::string, int>> cache;
  std::lock_guard<std::mutex> l(mu);
  auto it = cache.find(mode);
  if (it != cache.end()) return it->second;
  TempDir d;
  CaseResult r = RunCase(d.path(), mode, "", 0, false);
  EXPECT_FALSE(r.crashed);
  for (int rank = 0; rank < kWorld; ++rank) EXPECT_TRUE(r.flushed[rank].ok()) << r.flushed[rank].ToString();
  std::map<std::string, int> during;
  for (const auto& [p, n] : r.hits_at_end) {
    auto b = r.hits_before_arm.find(p);
    int diff = n - (b == r.hits_before_arm.end() ? 0 : b->second);
    if (diff > 0) during[p] = diff;
  }
  return cache[mode] = during;
}

bool IsWrite(const std::string& point) { return point.size() > 6 && point.substr(point.size() - 6) == ".write"; }

// The restart: a fresh PosixFs (the default file system) over what the crash left.
void CheckAfterCrash(const std::string& dir, Mode mode, const CaseResult& r) {
  ASSERT_FALSE(r.synced.empty()) << "step 1 was committed before the fault fs was armed";
  ASSERT_EQ(r.synced.front(), 1);
  // Machine crash: a commit counts once its directory fsync returned. Process crash: the page
  // cache keeps a completed rename, so LATEST moves with the rename itself.
  const std::vector<int64_t>& passed = mode == Mode::kMachine ? r.synced : r.renamed;
  for (size_t i = 1; i < passed.size(); ++i) EXPECT_GT(passed[i], passed[i - 1]) << "commits out of step order";
  const int64_t expected = passed.back();

  PosixFs fresh;
  auto latest = ReadLatestStep(fresh, dir);
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  EXPECT_EQ(*latest, expected) << "LATEST must name the newest checkpoint whose commit point was passed";
  ExpectCheckpointHolds(dir, kLatestStep, *latest, kWorld);  // Verify + every element's bytes
  auto m = OpenLatest(dir);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->applied_updates, *latest);
  EXPECT_EQ(m->sampler_position, *latest * 8);
  EXPECT_EQ(m->scaler.iter, *latest);

  // The writer reports a checkpoint done only when its commit point was passed, and (machine
  // model: rank 0 is alive until the crash) every one that was.
  std::set<int64_t> synced(r.synced.begin(), r.synced.end());
  if (mode == Mode::kMachine) {
    EXPECT_EQ(r.reported_done, synced);
  } else {
    for (int64_t s : r.reported_done) EXPECT_TRUE(synced.count(s)) << "step " << s << " reported done uncommitted";
  }
  // The crash is reported to the ranks (a checkpoint after it failed), unless it hit only
  // the garbage collection of a checkpoint already committed.
  bool some_failed = !r.flushed[0].ok() || !r.flushed[1].ok();
  if (expected < 3) {
    EXPECT_TRUE(some_failed) << "step 3 was not committed, yet no rank was told";
  }

  // A new job in the same directory: Open collects the leftovers; the next commit works.
  comm::MemoryStore store;
  store.set_timeout(std::chrono::seconds(20));
  std::vector<Status> got(kWorld);
  std::barrier opened(kWorld);
  RunRanks(kWorld, [&](int rank) {
    auto w = CheckpointWriter::Open(Options(dir, rank, &store, &fresh));
    if (!w.ok()) {
      got[rank] = w.status();
      opened.arrive_and_drop();
      return;
    }
    if (rank == 0) {
      // Rank 0 has collected the leftovers; rank 1 writes nothing before the barrier below.
      for (const auto& name : Tree(dir)) {
        EXPECT_EQ(name.find(".tmp"), std::string::npos) << name << " survived the open";
        EXPECT_EQ(name.find("crashsim"), std::string::npos) << name;
        auto step = ParseStepDirName(name.substr(0, name.find('/')));
        if (step) {
          EXPECT_LE(*step, *latest) << name << ": newer than LATEST, never committed";
          EXPECT_TRUE(std::filesystem::exists(JoinPath(JoinPath(dir, StepDirName(*step)), kManifestName))) << name;
        }
      }
    }
    opened.arrive_and_wait();
    Status s = (*w)->Submit(MakeSnapshot(kAfterRestart, rank, kWorld), TestFields(kWorld, kAfterRestart));
    Status f = (*w)->Flush();
    got[rank] = s.ok() ? f : s;
  });
  for (int rank = 0; rank < kWorld; ++rank)
    ASSERT_TRUE(got[rank].ok()) << "rank " << rank << ": " << got[rank].ToString();
  ExpectCheckpointHolds(dir, kLatestStep, kAfterRestart, kWorld);
  std::vector<std::string> want = {kLatestName};
  const std::string s = StepDirName(kAfterRestart);
  want.push_back(s);
  want.push_back(s + "/" + kManifestName);
  for (int rank = 0; rank < kWorld; ++rank) want.push_back(s + "/" + ShardFileName(rank));
  std::sort(want.begin(), want.end());
  EXPECT_EQ(Tree(dir), want) << "the new writer left something behind";
}

class CrashPoint : public ::testing::TestWithParam<std::tuple<std::string, Mode>> {};

TEST_P(CrashPoint, LatestNamesAWholeCheckpointAfterEveryHit) {
  const auto& [point, mode] = GetParam();
  const auto& dry = DryRunHits(mode);
  auto it = dry.find(point);
  const int n = it == dry.end() ? 0 : it->second;
  if (mode == Mode::kRank1) {
    // Rank 1 only writes its shard; the manifest, LATEST and garbage collection are rank 0's.
    static const std::set<std::string> kRank1 = {"dir.create", "shard.create", "shard.write",
                                                 "shard.fsync", "shard.rename", "dir.fsync"};
    EXPECT_EQ(n > 0, kRank1.count(point) > 0) << point << " reached " << n << " times by rank 1";
  } else {
    ASSERT_GT(n, 0) << point << " is never reached during steps 2 and 3";
  }
  int cases = 0;
  for (bool partial : IsWrite(point) ? std::vector<bool>{false, true} : std::vector<bool>{false}) {
    for (int hit = 1; hit <= n; ++hit) {
      SCOPED_TRACE(point + "#" + std::to_string(hit) + (partial ? " (partial write)" : "") + ", " + ModeName(mode));
      TempDir d;
      CaseResult r = RunCase(d.path(), mode, point, hit, partial);
      ASSERT_TRUE(r.crashed) << "the armed point was not reached";
      EXPECT_EQ(r.crash_point, point + "#" + std::to_string(hit));
      CheckAfterCrash(d.path(), mode, r);
      ++cases;
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
  EXPECT_EQ(cases, n * (IsWrite(point) ? 2 : 1));
}

// The dry run itself reaches every kill point (machine model): none of them goes untested.
TEST(CrashPoints, EveryKillPointIsReachedDuringACheckpoint) {
  const auto& dry = DryRunHits(Mode::kMachine);
  std::string counts;
  for (const auto& p : FaultInjectingFs::KillPoints()) {
    EXPECT_GT(dry.count(p), 0u) << p;
    counts += " " + p + "x" + std::to_string(dry.count(p) ? dry.at(p) : 0);
  }
  std::printf("kill points reached during steps 2 and 3:%s\n", counts.c_str());
  // Two shards of two steps, each created, fsynced and renamed once; several chunks each.
  EXPECT_EQ(dry.at("shard.create"), 4);
  EXPECT_EQ(dry.at("shard.rename"), 4);
  EXPECT_GT(dry.at("shard.write"), 4);
  EXPECT_EQ(dry.at("latest.rename"), 2);
  EXPECT_EQ(dry.at("manifest.rename"), 2);
}

INSTANTIATE_TEST_SUITE_P(AllKillPoints, CrashPoint,
                         ::testing::Combine(::testing::ValuesIn(FaultInjectingFs::KillPoints()),
                                            ::testing::Values(Mode::kMachine, Mode::kRank0, Mode::kRank1)),
                         [](const ::testing::TestParamInfo<std::tuple<std::string, Mode>>& i) {
                           std::string name = std::get<0>(i.param);
                           for (char& c : name)
                             if (c == '.') c = '_';
                           return name + "_" + ModeName(std::get<1>(i.param));
                         });

}  // namespace
}  // namespace zt::ckpt
