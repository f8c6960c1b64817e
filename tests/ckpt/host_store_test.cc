// HostStore: round trips through the double-buffered segment, what a crash in the middle of Put
// leaves (an abandoned Put, and a forked writer SIGKILLed mid-copy, deterministically and at random
// moments), corrupted slots skipped, another process reading what one put, growth, 0600
// permissions, and the removal of a job's segments and of orphaned ones.
#include "ckpt/host_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>

namespace zt::ckpt {
namespace {

std::string UniquePrefix() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  return "/zt-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + "-" + std::to_string(rd() % 100000);
}

// A prefix whose segments are removed at scope exit.
struct ScopedPrefix {
  std::string prefix = UniquePrefix();
  ~ScopedPrefix() { (void)RemoveHostSegments(prefix); }
  std::string Path(int rank) const { return "/dev/shm" + HostStore::SegmentName(prefix, rank); }
};

// A snapshot whose every byte depends on (step, rank, position), with three sections.
RankSnapshot MakeSnapshot(int64_t step, int rank, int world, int64_t floats_per_section) {
  RankSnapshot s;
  s.step = step;
  s.rank = rank;
  s.world_size = world;
  for (const char* kind : {"master/u0", "exp_avg/u0", "exp_avg_sq/u0"}) {
    auto* p = reinterpret_cast<float*>(s.AddSection(kind, DType::kF32, floats_per_section));
    for (int64_t i = 0; i < floats_per_section; ++i) p[i] = static_cast<float>(step * 1000003 + rank * 7919 + i);
  }
  s.AddSection("step_counter", DType::kI64, 1);
  std::memcpy(s.bytes.data() + s.sections.back().offset, &step, sizeof(step));
  return s;
}

void ExpectSame(const RankSnapshot& got, const RankSnapshot& want) {
  EXPECT_EQ(got.step, want.step);
  EXPECT_EQ(got.rank, want.rank);
  EXPECT_EQ(got.world_size, want.world_size);
  ASSERT_EQ(got.sections.size(), want.sections.size());
  for (size_t i = 0; i < got.sections.size(); ++i) {
    EXPECT_EQ(got.sections[i].name, want.sections[i].name);
    EXPECT_EQ(got.sections[i].dtype, want.sections[i].dtype);
    EXPECT_EQ(got.sections[i].numel, want.sections[i].numel);
    EXPECT_EQ(got.sections[i].offset, want.sections[i].offset);
  }
  ASSERT_EQ(got.bytes.size(), want.bytes.size());
  EXPECT_TRUE(got.bytes == want.bytes) << "snapshot bytes differ (step " << want.step << ")";
}

std::unique_ptr<HostStore> OpenOrDie(const std::string& prefix, int rank, bool create = true) {
  auto hs = HostStore::Open(prefix, rank, create);
  EXPECT_TRUE(hs.ok()) << hs.status().ToString();
  return hs.ok() ? std::move(*hs) : nullptr;
}

TEST(HostStore, RoundTripKeepsTheNewestAndThePrevious) {
  ScopedPrefix p;
  auto hs = OpenOrDie(p.prefix, 2);
  ASSERT_TRUE(hs);
  EXPECT_TRUE(hs->List().empty());
  EXPECT_EQ(hs->Get().status().code(), StatusCode::kNotFound);

  const RankSnapshot s1 = MakeSnapshot(1, 2, 4, 3000), s2 = MakeSnapshot(2, 2, 4, 3000),
                     s3 = MakeSnapshot(3, 2, 4, 3000);
  ASSERT_TRUE(hs->Put(s1).ok());
  ExpectSame(*hs->Get(), s1);
  EXPECT_EQ(hs->Get(HostSnapshotAge::kPrevious).status().code(), StatusCode::kNotFound);

  ASSERT_TRUE(hs->Put(s2).ok());
  ExpectSame(*hs->Get(), s2);
  ExpectSame(*hs->Get(HostSnapshotAge::kPrevious), s1);

  ASSERT_TRUE(hs->Put(s3).ok());
  auto held = hs->List();
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0].step, 3);
  EXPECT_EQ(held[1].step, 2);
  EXPECT_NE(held[0].slot, held[1].slot);
  EXPECT_GT(held[0].seq, held[1].seq);
  EXPECT_EQ(held[0].rank, 2);
  EXPECT_EQ(held[0].world_size, 4);
  EXPECT_EQ(held[0].bytes, s3.bytes.size());
  ExpectSame(*hs->Get(), s3);
  ExpectSame(*hs->Get(HostSnapshotAge::kPrevious), s2);
  ExpectSame(*hs->ReadSlot(held[1].slot), s2);

  // A steady state of same-sized snapshots holds two of them and does not grow.
  const uint64_t size = hs->segment_bytes();
  EXPECT_LE(size, 4096 + 2 * (4096 + s1.bytes.size() + 4096));
  ASSERT_TRUE(hs->Put(MakeSnapshot(4, 2, 4, 3000)).ok());
  EXPECT_EQ(hs->segment_bytes(), size);
}

TEST(HostStore, RejectsSnapshotsOfAnotherRankAndBadSections) {
  ScopedPrefix p;
  auto hs = OpenOrDie(p.prefix, 0);
  ASSERT_TRUE(hs);
  EXPECT_EQ(hs->Put(MakeSnapshot(1, 1, 2, 10)).code(), StatusCode::kInvalidArgument);
  RankSnapshot bad = MakeSnapshot(1, 0, 2, 10);
  bad.sections[0].numel = 1 << 20;
  EXPECT_EQ(hs->Put(bad).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(hs->List().empty());
}

TEST(HostStore, SegmentIsPrivateToItsOwner) {
  ScopedPrefix p;
  const mode_t old_umask = umask(0);  // even with a permissive umask
  auto hs = OpenOrDie(p.prefix, 0);
  umask(old_umask);
  ASSERT_TRUE(hs);
  EXPECT_EQ(hs->name(), p.prefix + "-r0");
  ASSERT_TRUE(hs->Put(MakeSnapshot(1, 0, 1, 100)).ok());
  struct stat st;
  ASSERT_EQ(stat(p.Path(0).c_str(), &st), 0) << p.Path(0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, geteuid());

  // A segment someone opened to others is refused, not used.
  int fd = shm_open(HostStore::SegmentName(p.prefix, 1).c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fchmod(fd, 0644), 0);
  close(fd);
  auto open = HostStore::Open(p.prefix, 1);
  ASSERT_FALSE(open.ok());
  EXPECT_EQ(open.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(open.status().message().find("mode 0644"), std::string::npos) << open.status().message();
}

TEST(HostStore, AbandonedPutLeavesThePreviousSnapshot) {
  ScopedPrefix p;
  auto hs = OpenOrDie(p.prefix, 0);
  ASSERT_TRUE(hs);
  const RankSnapshot s1 = MakeSnapshot(1, 0, 1, 100000);
  ASSERT_TRUE(hs->Put(s1).ok());
  for (size_t cut : {size_t{0}, size_t{1}, s1.bytes.size() / 2, s1.bytes.size()}) {
    PutHooks hooks;
    hooks.abandon_after = cut;
    ASSERT_TRUE(hs->Put(MakeSnapshot(2, 0, 1, 100000), hooks).ok());
    auto held = hs->List();
    ASSERT_EQ(held.size(), 1u) << "cut after " << cut << " bytes: the torn slot must not be listed";
    EXPECT_EQ(held[0].step, 1);
    ExpectSame(*hs->Get(), s1);
  }
  // A torn Put of a larger snapshot (the slot is moved and the segment grown) spares step 1 too.
  PutHooks hooks;
  hooks.abandon_after = 3u << 20;
  ASSERT_TRUE(hs->Put(MakeSnapshot(2, 0, 1, 1000000), hooks).ok());
  ExpectSame(*hs->Get(), s1);
  // A fresh opener (a restarted worker) sees the same, and its next Put keeps step 1 as previous.
  auto again = OpenOrDie(p.prefix, 0);
  ASSERT_TRUE(again);
  ExpectSame(*again->Get(), s1);
  const RankSnapshot s2 = MakeSnapshot(2, 0, 1, 1000000);
  ASSERT_TRUE(again->Put(s2).ok());
  ExpectSame(*again->Get(), s2);
  ExpectSame(*again->Get(HostSnapshotAge::kPrevious), s1);
}

// Reads one byte from fd (waiting); false at EOF.
bool ReadByte(int fd) {
  char c;
  return read(fd, &c, 1) == 1;
}

TEST(HostStore, WriterKilledInTheMiddleOfAPutLeavesThePreviousSnapshot) {
  ScopedPrefix p;
  const int64_t floats = 8 << 20;  // 3 x 32 MiB
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // the writer: step 1 whole, then step 2 until it is half copied
    close(pipe_fds[0]);
    auto hs = HostStore::Open(p.prefix, 1);
    if (!hs.ok() || !(*hs)->Put(MakeSnapshot(1, 1, 2, floats)).ok()) _exit(3);
    PutHooks hooks;
    hooks.on_progress = [&](size_t done, size_t total) {
      if (done >= total / 2) {
        if (write(pipe_fds[1], "x", 1) != 1) _exit(4);
        pause();  // SIGKILLed here, in the middle of the copy
      }
    };
    (void)(*hs)->Put(MakeSnapshot(2, 1, 2, floats), hooks);
    _exit(5);
  }
  close(pipe_fds[1]);
  ASSERT_TRUE(ReadByte(pipe_fds[0])) << "the writer did not reach the middle of its second Put";
  close(pipe_fds[0]);
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;

  auto hs = OpenOrDie(p.prefix, 1, /*create=*/false);
  ASSERT_TRUE(hs);
  std::vector<std::string> problems;
  auto held = hs->List(&problems);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].step, 1);
  ExpectSame(*hs->Get(), MakeSnapshot(1, 1, 2, floats));
}

TEST(HostStore, WriterKilledAtRandomMomentsNeverLeavesATornSnapshot) {
  ScopedPrefix p;
  const int64_t floats = 1 << 20;  // 3 x 4 MiB
  std::mt19937 rng(12345);
  int64_t next_step = 1;
  for (int round = 0; round < 6; ++round) {
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    const int64_t first = next_step;
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {  // Put steps first, first+1, ... forever, a byte on the pipe after each
      close(pipe_fds[0]);
      auto hs = HostStore::Open(p.prefix, 0);
      if (!hs.ok()) _exit(3);
      for (int64_t step = first;; ++step) {
        if (!(*hs)->Put(MakeSnapshot(step, 0, 1, floats)).ok()) _exit(4);
        if (write(pipe_fds[1], "x", 1) != 1) _exit(5);
      }
    }
    close(pipe_fds[1]);
    int64_t published = 0;
    for (int i = 0; i < 2; ++i) published += ReadByte(pipe_fds[0]);
    ASSERT_EQ(published, 2);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
    ASSERT_EQ(kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    while (ReadByte(pipe_fds[0])) ++published;  // what it reported before dying
    close(pipe_fds[0]);

    auto hs = OpenOrDie(p.prefix, 0, /*create=*/false);
    ASSERT_TRUE(hs);
    auto held = hs->List();
    ASSERT_FALSE(held.empty());
    const int64_t last_reported = first + published - 1;
    EXPECT_GE(held[0].step, last_reported) << "round " << round;
    EXPECT_LE(held[0].step, last_reported + 1) << "round " << round;
    ExpectSame(*hs->Get(), MakeSnapshot(held[0].step, 0, 1, floats));
    if (held.size() > 1) ExpectSame(*hs->Get(HostSnapshotAge::kPrevious), MakeSnapshot(held[1].step, 0, 1, floats));
    next_step = held[0].step + 1;
  }
}

// Flips one byte of the segment file at the first occurrence of `needle`.
void CorruptSegment(const std::string& path, const std::string& needle) {
  int fd = open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << path;
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  void* m = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(m, MAP_FAILED);
  std::string_view all(static_cast<char*>(m), static_cast<size_t>(st.st_size));
  size_t at = all.find(needle);
  ASSERT_NE(at, std::string_view::npos) << "pattern not found in " << path;
  static_cast<char*>(m)[at + needle.size() / 2] ^= 0x40;
  munmap(m, static_cast<size_t>(st.st_size));
  close(fd);
}

TEST(HostStore, CorruptedSlotIsSkipped) {
  ScopedPrefix p;
  auto hs = OpenOrDie(p.prefix, 0);
  ASSERT_TRUE(hs);
  const RankSnapshot s1 = MakeSnapshot(1, 0, 1, 5000), s2 = MakeSnapshot(2, 0, 1, 5000);
  ASSERT_TRUE(hs->Put(s1).ok());
  ASSERT_TRUE(hs->Put(s2).ok());
  // Step 2's exp_avg section, which no other snapshot contains.
  const SnapshotSection* sec = s2.Find("exp_avg/u0");
  CorruptSegment(p.Path(0), std::string(s2.bytes.data() + sec->offset + 400, 64));

  std::vector<std::string> problems;
  auto held = hs->List(&problems);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].step, 1);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("step 2"), std::string::npos) << problems[0];
  EXPECT_NE(problems[0].find("checksum"), std::string::npos) << problems[0];
  ExpectSame(*hs->Get(), s1);
  EXPECT_EQ(hs->Get(HostSnapshotAge::kPrevious).status().code(), StatusCode::kNotFound);
  auto slot = hs->ReadSlot(1 - held[0].slot);
  EXPECT_EQ(slot.status().code(), StatusCode::kDataLoss);

  // A restarted writer overwrites the corrupted slot, not the good one.
  auto again = OpenOrDie(p.prefix, 0);
  ASSERT_TRUE(again);
  const RankSnapshot s3 = MakeSnapshot(3, 0, 1, 5000);
  ASSERT_TRUE(again->Put(s3).ok());
  ExpectSame(*again->Get(), s3);
  ExpectSame(*again->Get(HostSnapshotAge::kPrevious), s1);
}

TEST(HostStore, AnotherProcessReadsWhatOnePut) {
  ScopedPrefix p;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto hs = HostStore::Open(p.prefix, 3);
    if (!hs.ok()) _exit(3);
    if (!(*hs)->Put(MakeSnapshot(7, 3, 4, 20000)).ok() || !(*hs)->Put(MakeSnapshot(8, 3, 4, 20000)).ok()) _exit(4);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto hs = OpenOrDie(p.prefix, 3, /*create=*/false);
  ASSERT_TRUE(hs);
  ExpectSame(*hs->Get(), MakeSnapshot(8, 3, 4, 20000));
  ExpectSame(*hs->Get(HostSnapshotAge::kPrevious), MakeSnapshot(7, 3, 4, 20000));
}

TEST(HostStore, GrowsAndShrinksSnapshotSizesWithoutLosingThePrevious) {
  ScopedPrefix p;
  auto hs = OpenOrDie(p.prefix, 0);
  ASSERT_TRUE(hs);
  const int64_t sizes[] = {1000, 300000, 50, 200000, 700000, 10, 700000};
  int64_t step = 0;
  uint64_t largest = 0;
  for (int64_t floats : sizes) {
    ++step;
    RankSnapshot s = MakeSnapshot(step, 0, 1, floats);
    largest = std::max<uint64_t>(largest, s.bytes.size());
    ASSERT_TRUE(hs->Put(s).ok()) << "step " << step;
    ExpectSame(*hs->Get(), s);
    if (step > 1) ExpectSame(*hs->Get(HostSnapshotAge::kPrevious), MakeSnapshot(step - 1, 0, 1, sizes[step - 2]));
    // Each region is sized for one snapshot (plus its table page): at most three regions' worth.
    EXPECT_LE(hs->segment_bytes(), 4096 + 3 * (largest + 2 * 4096)) << "step " << step;
  }
  // Another process sees the grown segment.
  auto reader = OpenOrDie(p.prefix, 0, false);
  ASSERT_TRUE(reader);
  ExpectSame(*reader->Get(), MakeSnapshot(step, 0, 1, sizes[step - 1]));
}

TEST(HostStore, BadPrefixesAndForeignSegmentsAreClearErrors) {
  for (const char* bad : {"", "/", "zt-no-slash", "/a/b", "/spaces here"}) {
    auto hs = HostStore::Open(bad, 0);
    ASSERT_FALSE(hs.ok()) << bad;
    EXPECT_EQ(hs.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(hs.status().message().find("ZT_SHM_PREFIX"), std::string::npos) << hs.status().message();
  }
  ScopedPrefix p;
  EXPECT_EQ(HostStore::Open(p.prefix, 0, /*create=*/false).status().code(), StatusCode::kNotFound);
  // A segment of the right name holding something else.
  int fd = shm_open(HostStore::SegmentName(p.prefix, 0).c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  std::string junk(8192, 'j');
  ASSERT_EQ(write(fd, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
  close(fd);
  auto hs = HostStore::Open(p.prefix, 0);
  ASSERT_FALSE(hs.ok());
  EXPECT_EQ(hs.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(hs.status().message().find("not a ztrain host store"), std::string::npos) << hs.status().message();
}

bool ShmExists(const std::string& name) { return access(("/dev/shm" + name).c_str(), F_OK) == 0; }

TEST(HostStore, RemoveHostSegmentsRemovesExactlyTheJobsSegments) {
  ScopedPrefix p, other;
  const std::string longer = p.prefix + "x";  // shares the stem, another job
  for (int r : {0, 3, 12}) ASSERT_TRUE(OpenOrDie(p.prefix, r));
  ASSERT_TRUE(OpenOrDie(longer, 0));
  ASSERT_TRUE(OpenOrDie(other.prefix, 0));
  auto removed = RemoveHostSegments(p.prefix);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(removed->size(), 3u);
  for (int r : {0, 3, 12}) EXPECT_FALSE(ShmExists(HostStore::SegmentName(p.prefix, r)));
  EXPECT_TRUE(ShmExists(HostStore::SegmentName(longer, 0)));
  EXPECT_TRUE(ShmExists(HostStore::SegmentName(other.prefix, 0)));
  (void)RemoveHostSegments(longer);
  auto again = RemoveHostSegments(p.prefix);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
}

TEST(HostStore, OrphanedSegmentsOfDeadAgentsAreRemoved) {
  pid_t dead = fork();
  ASSERT_GE(dead, 0);
  if (dead == 0) _exit(0);
  ASSERT_EQ(waitpid(dead, nullptr, 0), dead);
  const std::string orphan = DefaultShmPrefix(dead, "0badc0de"), alive = DefaultShmPrefix(getppid(), "0badc0de");
  ASSERT_TRUE(OpenOrDie(orphan, 0));
  ASSERT_TRUE(OpenOrDie(orphan, 1));
  ASSERT_TRUE(OpenOrDie(alive, 0));
  auto removed = RemoveOrphanedHostSegments();
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_FALSE(ShmExists(HostStore::SegmentName(orphan, 0)));
  EXPECT_FALSE(ShmExists(HostStore::SegmentName(orphan, 1)));
  EXPECT_TRUE(ShmExists(HostStore::SegmentName(alive, 0))) << "its agent (our parent) still runs";
  (void)RemoveHostSegments(alive);
  (void)RemoveHostSegments(orphan);
}

}  // namespace
}  // namespace zt::ckpt
