// ChooseRestore with fake inputs: every rank of a world runs it on its own thread over one
// MemoryStore, with fake host-memory holdings and a fake disk catalog. Checks host memory newer
// than disk, disk newer, equal steps, ranks disagreeing on host steps, a corrupt disk LATEST
// falling back to the previous checkpoint, snapshots of another world size ignored, and errors
// reaching every rank instead of a hang.
#include "ckpt/restore.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "comm/memory_store.h"

namespace zt::ckpt {
namespace {

using namespace std::chrono_literals;

class FakeDisk final : public DiskCatalog {
 public:
  FakeDisk(std::vector<int64_t> steps_newest_first, std::set<int64_t> corrupt = {}) : corrupt_(std::move(corrupt)) {
    for (int64_t s : steps_newest_first) list_.push_back({s, "/ckpt/step-" + std::to_string(s)});
  }
  StatusOr<std::vector<DiskCheckpointRef>> ListCommitted() override {
    if (!list_error_.ok()) return list_error_;
    return list_;
  }
  Status Verify(const DiskCheckpointRef& c) override {
    std::lock_guard<std::mutex> l(mu_);
    verified_.push_back(c.step);
    if (corrupt_.count(c.step)) return DataLoss(c.path + "/rank-00001.shard: checksum mismatch");
    return OkStatus();
  }
  std::vector<int64_t> verified() {
    std::lock_guard<std::mutex> l(mu_);
    return verified_;
  }
  Status list_error_;

 private:
  std::vector<DiskCheckpointRef> list_;
  std::set<int64_t> corrupt_;
  std::mutex mu_;
  std::vector<int64_t> verified_;
};

// held[rank] = {(slot, step), ...} newest first, as HostStore::List returns them.
using Held = std::vector<std::vector<std::pair<int, int64_t>>>;

std::vector<StatusOr<RestoreChoice>> ChooseOnAllRanks(const Held& held, DiskCatalog* disk, int world = -1) {
  if (world < 0) world = static_cast<int>(held.size());
  comm::MemoryStore store;
  store.set_timeout(10s);
  std::vector<StatusOr<RestoreChoice>> out(static_cast<size_t>(world), StatusOr<RestoreChoice>(Internal("not run")));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      std::vector<HostSlotInfo> infos;
      uint64_t seq = 100;
      for (auto [slot, step] : held[static_cast<size_t>(r)])
        infos.push_back(HostSlotInfo{slot, seq--, step, r, world, 4096});
      out[static_cast<size_t>(r)] = ChooseRestore(infos, disk, store, r, world);
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

// Every rank agrees on source and step; returns rank 0's choice.
RestoreChoice Agreed(const std::vector<StatusOr<RestoreChoice>>& all) {
  for (size_t r = 0; r < all.size(); ++r) {
    EXPECT_TRUE(all[r].ok()) << "rank " << r << ": " << all[r].status().ToString();
    if (!all[r].ok()) return {};
    EXPECT_EQ(all[r]->source, all[0]->source) << "rank " << r;
    EXPECT_EQ(all[r]->step, all[0]->step) << "rank " << r;
    EXPECT_EQ(all[r]->disk_path, all[0]->disk_path) << "rank " << r;
  }
  return all.empty() || !all[0].ok() ? RestoreChoice{} : *all[0];
}

TEST(ChooseRestore, HostMemoryNewerThanDiskWinsWithEachRanksOwnSlot) {
  FakeDisk disk({3, 2});
  auto all = ChooseOnAllRanks({{{1, 5}, {0, 4}}, {{0, 5}, {1, 4}}, {{1, 5}, {0, 4}}}, &disk);
  RestoreChoice c = Agreed(all);
  EXPECT_EQ(c.source, RestoreSource::kHostMemory);
  EXPECT_EQ(c.step, 5);
  EXPECT_EQ(all[0]->host_slot, 1);
  EXPECT_EQ(all[1]->host_slot, 0);
  EXPECT_EQ(all[2]->host_slot, 1);
  EXPECT_TRUE(disk.verified().empty()) << "older disk checkpoints need no verification";
  EXPECT_EQ(all[1]->Describe(), "host memory step 5 (slot 0)");
}

TEST(ChooseRestore, NewerDiskCheckpointWins) {
  FakeDisk disk({7, 6});
  RestoreChoice c = Agreed(ChooseOnAllRanks({{{0, 5}, {1, 4}}, {{1, 5}, {0, 4}}}, &disk));
  EXPECT_EQ(c.source, RestoreSource::kDisk);
  EXPECT_EQ(c.step, 7);
  EXPECT_EQ(c.disk_path, "/ckpt/step-7");
  EXPECT_EQ(c.host_slot, -1);
  EXPECT_EQ(disk.verified(), std::vector<int64_t>{7}) << "rank 0 verifies it, once";
  EXPECT_TRUE(c.warnings.empty());
}

TEST(ChooseRestore, HostMemoryAsNewAsDiskIsPreferred) {
  FakeDisk disk({5, 4});
  RestoreChoice c = Agreed(ChooseOnAllRanks({{{0, 5}}, {{1, 5}}}, &disk));
  EXPECT_EQ(c.source, RestoreSource::kHostMemory);
  EXPECT_EQ(c.step, 5);
}

TEST(ChooseRestore, RanksDisagreeingOnHostStepsUseTheNewestStepAllHold) {
  FakeDisk disk({2});
  RestoreChoice c = Agreed(ChooseOnAllRanks({{{0, 5}, {1, 4}}, {{1, 4}, {0, 3}}, {{0, 4}}}, &disk));
  EXPECT_EQ(c.source, RestoreSource::kHostMemory);
  EXPECT_EQ(c.step, 4);

  // One rank holds nothing (its segment is gone): host memory cannot be used at all.
  c = Agreed(ChooseOnAllRanks({{{0, 5}, {1, 4}}, {}, {{0, 4}}}, &disk));
  EXPECT_EQ(c.source, RestoreSource::kDisk);
  EXPECT_EQ(c.step, 2);

  // Nothing in common, and no disk: a fresh start.
  c = Agreed(ChooseOnAllRanks({{{0, 5}}, {{0, 6}}}, nullptr));
  EXPECT_EQ(c.source, RestoreSource::kNone);
  EXPECT_EQ(c.Describe(), "nothing (a fresh start)");
}

TEST(ChooseRestore, CorruptDiskLatestFallsBackToThePreviousCheckpoint) {
  FakeDisk disk({8, 6, 4}, /*corrupt=*/{8});
  auto all = ChooseOnAllRanks({{}, {}}, &disk);
  RestoreChoice c = Agreed(all);
  EXPECT_EQ(c.source, RestoreSource::kDisk);
  EXPECT_EQ(c.step, 6);
  EXPECT_EQ(c.disk_path, "/ckpt/step-6");
  ASSERT_EQ(all[0]->warnings.size(), 1u);
  EXPECT_NE(all[0]->warnings[0].find("skipping disk checkpoint /ckpt/step-8 (step 8)"), std::string::npos)
      << all[0]->warnings[0];
  EXPECT_NE(all[0]->warnings[0].find("checksum mismatch"), std::string::npos) << all[0]->warnings[0];
  EXPECT_EQ(disk.verified(), (std::vector<int64_t>{8, 6}));

  // Host memory older than the corrupt LATEST but newer than the previous one wins.
  FakeDisk disk2({8, 6}, {8});
  c = Agreed(ChooseOnAllRanks({{{0, 7}}, {{1, 7}}}, &disk2));
  EXPECT_EQ(c.source, RestoreSource::kHostMemory);
  EXPECT_EQ(c.step, 7);
  EXPECT_EQ(c.warnings.size(), 1u);

  // Every disk checkpoint corrupt and no host memory: a fresh start, with a warning for each.
  FakeDisk disk3({8, 6}, {8, 6});
  c = Agreed(ChooseOnAllRanks({{}, {}}, &disk3));
  EXPECT_EQ(c.source, RestoreSource::kNone);
  EXPECT_EQ(c.warnings.size(), 2u);
}

TEST(ChooseRestore, SnapshotsOfAnotherWorldSizeOrRankDoNotCount) {
  comm::MemoryStore store;
  store.set_timeout(10s);
  // A single rank whose host store holds a snapshot from a 2-rank job (and one of rank 1).
  std::vector<HostSlotInfo> held = {{0, 9, 9, 0, 2, 64}, {1, 8, 8, 1, 1, 64}};
  auto c = ChooseRestore(held, nullptr, store, 0, 1);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->source, RestoreSource::kNone);
}

TEST(ChooseRestore, ErrorsReachEveryRank) {
  // Rank 0 cannot list the disk and there is no host memory: every rank fails (none waits forever).
  FakeDisk disk({4});
  disk.list_error_ = Unavailable("/ckpt: input/output error");
  auto all = ChooseOnAllRanks({{}, {}, {}}, &disk);
  for (size_t r = 0; r < all.size(); ++r) {
    ASSERT_FALSE(all[r].ok()) << "rank " << r;
    EXPECT_NE(all[r].status().message().find("input/output error"), std::string::npos)
        << all[r].status().message();
  }
  // With host memory in common the same listing failure is only a warning.
  auto ok = ChooseOnAllRanks({{{0, 3}}, {{0, 3}}}, &disk);
  RestoreChoice c = Agreed(ok);
  EXPECT_EQ(c.source, RestoreSource::kHostMemory);
  EXPECT_EQ(c.warnings.size(), 1u);
}

TEST(ChooseRestore, MalformedStoreValuesAreDataLoss) {
  comm::MemoryStore store;
  store.set_timeout(2s);
  ASSERT_TRUE(store.Set("zt/restore/host/1", "five").ok());  // another job's garbage for rank 1
  std::vector<HostSlotInfo> none;
  auto r0 = ChooseRestore(none, nullptr, store, 0, 2);
  ASSERT_FALSE(r0.ok());
  EXPECT_NE(r0.status().message().find("zt/restore/host/1 = 'five' is not a list of steps"), std::string::npos)
      << r0.status().message();
  // Rank 1 (late) gets rank 0's verdict instead of waiting.
  auto r1 = ChooseRestore(none, nullptr, store, 1, 2);
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.status().message(), r0.status().message());

  comm::MemoryStore bad;
  bad.set_timeout(2s);
  ASSERT_TRUE(bad.Set("zt/restore/choice", "host notanumber").ok());
  ASSERT_TRUE(bad.Set("zt/restore/host/0", "1").ok());
  std::vector<HostSlotInfo> held = {{0, 1, 1, 1, 2, 64}};
  auto r = ChooseRestore(held, nullptr, bad, 1, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("zt/restore/choice"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace zt::ckpt
