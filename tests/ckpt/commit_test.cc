// The commit protocol with N = 1, 2, 4 ranks as threads sharing a MemoryStore: LATEST, manifest,
// shard contents, keep_last, garbage collection at open, failures on one rank, a dead rank.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <mutex>

#include "ckpt/commit.h"
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

std::vector<std::string> StepDirs(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_directory()) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Runs `steps` checkpoints on `world` rank threads; returns each rank's Flush status.
std::vector<Status> RunJob(const std::string& dir, int world, const std::vector<int64_t>& steps, int keep_last,
                           FileSystem* fs = nullptr, comm::Store* store = nullptr, int64_t scale = 1) {
  comm::MemoryStore own;
  if (store == nullptr) store = &own;
  store->set_timeout(std::chrono::seconds(20));
  std::vector<Status> result(world);
  RunRanks(world, [&](int rank) {
    WriterOptions o;
    o.dir = dir;
    o.rank = rank;
    o.world_size = world;
    o.store = store;
    o.fs = fs;
    o.keep_last = keep_last;
    o.chunk_bytes = 4096;  // many chunks even for small test shards
    o.io_threads = 3;
    auto w = CheckpointWriter::Open(o);
    if (!w.ok()) {
      result[rank] = w.status();
      return;
    }
    Status first;
    for (int64_t step : steps) {
      Status s = (*w)->Submit(MakeSnapshot(step, rank, world, scale), TestFields(world, step, scale));
      if (first.ok() && !s.ok()) first = s;
    }
    Status f = (*w)->Flush();
    result[rank] = first.ok() ? f : first;
  });
  return result;
}

class CommitProtocol : public ::testing::TestWithParam<int> {};

TEST_P(CommitProtocol, CommitsEveryStepAndKeepsTheNewestK) {
  const int world = GetParam();
  TempDir d;
  auto statuses = RunJob(d.path(), world, {10, 20, 30, 40}, 2);
  for (int r = 0; r < world; ++r) ASSERT_TRUE(statuses[r].ok()) << "rank " << r << ": " << statuses[r].ToString();
  EXPECT_EQ(testing::ReadBytes(d.File("LATEST")), "step-000000000040\n");
  EXPECT_EQ(StepDirs(d.path()), (std::vector<std::string>{"step-000000000030", "step-000000000040"}));
  ExpectCheckpointHolds(d.path(), kLatestStep, 40, world);
  ExpectCheckpointHolds(d.path(), 30, 30, world);
  // Nothing but what the format names.
  std::vector<std::string> expected = {"LATEST"};
  for (const char* s : {"step-000000000030", "step-000000000040"}) {
    expected.push_back(s);
    expected.push_back(std::string(s) + "/manifest.json");
    for (int r = 0; r < world; ++r) expected.push_back(std::string(s) + "/" + ShardFileName(r));
  }
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(Tree(d.path()), expected);

  auto m = OpenLatest(d.path());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->step, 40);
  EXPECT_EQ(m->applied_updates, 40);
  EXPECT_EQ(m->world_size, world);
  EXPECT_EQ(m->layout.units.size(), 3u);
  EXPECT_EQ(m->sampler_position, 320);
  EXPECT_EQ(m->config["model"]["name"], "tiny");
  EXPECT_FALSE(m->created.empty());

  // A second run in the same directory continues; keep_last <= 0 keeps everything.
  statuses = RunJob(d.path(), world, {50, 60}, 0);
  for (int r = 0; r < world; ++r) ASSERT_TRUE(statuses[r].ok()) << statuses[r].ToString();
  EXPECT_EQ(StepDirs(d.path()).size(), 4u);
  ExpectCheckpointHolds(d.path(), kLatestStep, 60, world);

  auto list = ListCheckpoints(d.path());
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->entries.size(), 4u);
  EXPECT_EQ(list->latest, "step-000000000060");
  EXPECT_EQ(list->entries[0].state, CheckpointState::kCommitted);
  EXPECT_EQ(list->entries[3].state, CheckpointState::kLatest);
  EXPECT_GT(list->entries[3].bytes, 0u);
}

INSTANTIATE_TEST_SUITE_P(Ranks, CommitProtocol, ::testing::Values(1, 2, 4));

TEST(CommitProtocol, ReadsAnyRangeOfAnySection) {
  TempDir d;
  ASSERT_TRUE(RunJob(d.path(), 2, {5}, 2)[0].ok());
  auto r = LoadCheckpoint(d.path(), 5);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  float v[3];
  ASSERT_TRUE((*r)->ReadElements(1, "exp_avg/h.0", DType::kF32, 100, 3, v).ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(v[i], testing::ExpectedValue(5, 1, 1, 100 + i));
  Status s = (*r)->ReadElements(1, "exp_avg/h.0", DType::kF32, 499, 2, v);  // shard is 500
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange) << s.ToString();
  s = (*r)->ReadElements(0, "nope/h.0", DType::kF32, 0, 1, v);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("'nope/h.0'"), std::string::npos);
  s = (*r)->ReadElements(0, "master/h.0", DType::kBF16, 0, 1, v);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  s = (*r)->ReadElements(2, "master/h.0", DType::kF32, 0, 1, v);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadCheckpoint(d.path(), 6).status().code(), StatusCode::kNotFound);
}

TEST(CommitProtocol, OpenRemovesTheLeftoversOfACrashedRun) {
  TempDir d;
  ASSERT_TRUE(RunJob(d.path(), 2, {1, 2}, 3)[0].ok());
  // What a crash may leave: an uncommitted newer checkpoint (manifest, no LATEST move), a step
  // directory without manifest, tmp files.
  std::filesystem::copy(d.File("step-000000000002"), d.File("step-000000000007"));
  std::filesystem::create_directory(d.File("step-000000000008"));
  testing::WriteBytes(d.File("step-000000000008/rank-00000.shard.tmp"), "partial");
  testing::WriteBytes(d.File("step-000000000002/rank-00001.shard.tmp"), "partial");
  testing::WriteBytes(d.File("LATEST.tmp"), "step-000000000007\n");
  testing::WriteBytes(d.File("notes.txt"), "not ours");
  std::filesystem::create_directory(d.File("step-000000000000"));  // older, no manifest
  auto list = ListCheckpoints(d.path());
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->entries.size(), 5u);
  EXPECT_EQ(list->entries[0].state, CheckpointState::kIncomplete);
  // step 7 is a copy of step 2: its manifest names step 2, so it cannot be step 7's.
  EXPECT_EQ(list->entries[3].state, CheckpointState::kInvalid);
  EXPECT_EQ(list->entries[4].state, CheckpointState::kIncomplete);

  comm::MemoryStore store;
  WriterOptions o;
  o.dir = d.path();
  o.keep_last = 3;
  auto w = CheckpointWriter::Open(o);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(StepDirs(d.path()), (std::vector<std::string>{"step-000000000001", "step-000000000002"}));
  EXPECT_FALSE(std::filesystem::exists(d.File("LATEST.tmp")));
  EXPECT_FALSE(std::filesystem::exists(d.File("step-000000000002/rank-00001.shard.tmp")));
  EXPECT_TRUE(std::filesystem::exists(d.File("notes.txt")));
  ExpectCheckpointHolds(d.path(), kLatestStep, 2, 2);
}

TEST(CommitProtocol, GarbageCollectionNeverTouchesWhatMayBeInFlight) {
  TempDir d;
  ASSERT_TRUE(RunJob(d.path(), 1, {1, 2, 3}, 0)[0].ok());
  std::filesystem::create_directory(d.File("step-000000000009"));  // in flight: newer than LATEST
  testing::WriteBytes(d.File("step-000000000009/rank-00000.shard.tmp"), "x");
  auto gc = CollectGarbage(*DefaultFs(), d.path(), 1, 3, /*at_open=*/false);
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  EXPECT_EQ(gc->removed, (std::vector<std::string>{"step-000000000001", "step-000000000002"}));
  EXPECT_TRUE(std::filesystem::exists(d.File("step-000000000009/rank-00000.shard.tmp")));
  EXPECT_TRUE(std::filesystem::exists(d.File("step-000000000003/manifest.json")));
}

// Fails every write of the shards of one step (only on one rank's files when `rank` >= 0).
class FailStepFs final : public FileSystem {
 public:
  FailStepFs(int64_t step, int rank) : step_dir_(StepDirName(step)), rank_(rank) {}
  StatusOr<std::unique_ptr<WritableFile>> Create(const std::string& path, const CreateOptions& o) override {
    bool hit = path.find(step_dir_) != std::string::npos &&
               (rank_ < 0 || path.find(ShardFileName(rank_)) != std::string::npos);
    if (hit) return Unavailable("injected: no space left on " + path);
    return DefaultFs()->Create(path, o);
  }
  using FileSystem::Create;
  StatusOr<std::unique_ptr<ReadableFile>> OpenRead(const std::string& p) override { return DefaultFs()->OpenRead(p); }
  Status Rename(const std::string& a, const std::string& b) override { return DefaultFs()->Rename(a, b); }
  Status SyncDir(const std::string& p) override { return DefaultFs()->SyncDir(p); }
  Status Unlink(const std::string& p) override { return DefaultFs()->Unlink(p); }
  Status RemoveDir(const std::string& p) override { return DefaultFs()->RemoveDir(p); }
  Status MakeDir(const std::string& p) override { return DefaultFs()->MakeDir(p); }
  StatusOr<std::vector<DirEntry>> List(const std::string& p) override { return DefaultFs()->List(p); }
  StatusOr<uint64_t> FileSize(const std::string& p) override { return DefaultFs()->FileSize(p); }
  StatusOr<bool> Exists(const std::string& p) override { return DefaultFs()->Exists(p); }

 private:
  std::string step_dir_;
  int rank_;
};

TEST(CommitProtocol, AFailedShardOnOneRankFailsTheCheckpointOnEveryRank) {
  TempDir d;
  FailStepFs fs(2, /*rank=*/1);
  comm::MemoryStore store;
  std::mutex mu;
  std::vector<std::pair<int64_t, bool>> done;  // rank 0's outcomes, in order
  std::vector<Status> flushed(2);
  RunRanks(2, [&](int rank) {
    WriterOptions o;
    o.dir = d.path();
    o.rank = rank;
    o.world_size = 2;
    o.store = &store;
    o.fs = &fs;
    o.keep_last = 5;
    if (rank == 0)
      o.on_done = [&](int64_t step, const Status& s) {
        std::lock_guard<std::mutex> l(mu);
        done.push_back({step, s.ok()});
      };
    auto w = CheckpointWriter::Open(o);
    ASSERT_TRUE(w.ok());
    std::vector<Status> submitted;
    for (int64_t step : {1, 2, 3}) submitted.push_back((*w)->Submit(MakeSnapshot(step, rank, 2), TestFields(2, step)));
    Status f = (*w)->Flush();
    // The failure is reported once: by a later Submit or by Flush.
    int reported = !f.ok();
    for (const auto& s : submitted) reported += !s.ok();
    EXPECT_EQ(reported, 1) << "rank " << rank;
    flushed[rank] = f;
    for (const auto& s : submitted)
      if (!s.ok()) flushed[rank] = s;
    EXPECT_TRUE((*w)->Flush().ok());
    EXPECT_EQ((*w)->stats().failed, 1);
    EXPECT_EQ((*w)->stats().committed, 2);
  });
  EXPECT_EQ(done, (std::vector<std::pair<int64_t, bool>>{{1, true}, {2, false}, {3, true}}));
  for (int r = 0; r < 2; ++r) {
    EXPECT_NE(flushed[r].message().find("step 2"), std::string::npos) << flushed[r].ToString();
    EXPECT_NE(flushed[r].message().find("injected: no space"), std::string::npos) << flushed[r].ToString();
  }
  ExpectCheckpointHolds(d.path(), kLatestStep, 3, 2);
  EXPECT_FALSE(std::filesystem::exists(d.File("step-000000000002/manifest.json")));
  // Step 2's directory (no manifest, older than the commit of 3) was collected.
  EXPECT_FALSE(std::filesystem::exists(d.File("step-000000000002")));
}

TEST(CommitProtocol, ADeadRankTimesOutNamingItsKey) {
  TempDir d;
  comm::MemoryStore store;
  store.set_timeout(std::chrono::milliseconds(300));
  WriterOptions o;
  o.dir = d.path();
  o.rank = 0;
  o.world_size = 2;  // rank 1 never comes
  o.store = &store;
  auto w = CheckpointWriter::Open(o);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Submit(MakeSnapshot(4, 0, 2), TestFields(2, 4)).ok());
  Status s = (*w)->Flush();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s.ToString();
  EXPECT_NE(s.message().find("ckpt/4/rank/1"), std::string::npos) << s.ToString();
  EXPECT_FALSE(std::filesystem::exists(d.File("LATEST")));
}

TEST(CommitProtocol, RefusesToCommitAManifestItCouldNotRead) {
  TempDir d;
  WriterOptions o;
  o.dir = d.path();
  auto w = CheckpointWriter::Open(o);
  ASSERT_TRUE(w.ok());
  Manifest bad = TestFields(1, 1);
  bad.precision = "fp7";
  ASSERT_TRUE((*w)->Submit(MakeSnapshot(1, 0, 1), bad).ok());
  Status s = (*w)->Flush();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("precision"), std::string::npos) << s.ToString();
  EXPECT_FALSE(std::filesystem::exists(d.File("LATEST")));
  EXPECT_FALSE(std::filesystem::exists(d.File("step-000000000001/manifest.json")));
}

TEST(CommitProtocol, OpenChecksItsOptions) {
  WriterOptions o;
  EXPECT_EQ(CheckpointWriter::Open(o).status().code(), StatusCode::kInvalidArgument);  // no dir
  o.dir = "/tmp/x";
  o.world_size = 2;
  EXPECT_EQ(CheckpointWriter::Open(o).status().code(), StatusCode::kInvalidArgument);  // no store
  o.world_size = 1;
  o.max_in_flight = 0;
  EXPECT_EQ(CheckpointWriter::Open(o).status().code(), StatusCode::kInvalidArgument);
  o.max_in_flight = 1;
  o.rank = 1;
  EXPECT_EQ(CheckpointWriter::Open(o).status().code(), StatusCode::kInvalidArgument);
}

TEST(CommitProtocol, RankZeroThatCannotOpenTellsTheOthers) {
  TempDir d;
  testing::WriteBytes(d.File("file"), "x");
  comm::MemoryStore store;
  std::vector<Status> got(2);
  RunRanks(2, [&](int rank) {
    WriterOptions o;
    o.dir = d.File("file/sub");  // under a regular file: cannot be created
    o.rank = rank;
    o.world_size = 2;
    o.store = &store;
    got[rank] = CheckpointWriter::Open(o).status();
  });
  EXPECT_FALSE(got[0].ok());
  EXPECT_FALSE(got[1].ok());
  EXPECT_NE(got[1].message().find("rank 0 could not open"), std::string::npos) << got[1].ToString();
}

}  // namespace
}  // namespace zt::ckpt
