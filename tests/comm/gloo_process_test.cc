// Gloo communicator across real processes (fork) rendezvousing through a FileStore or a TcpStore:
// every operation against the serial reference, bit-identical across ranks and runs; a peer that
// exits (_exit(0)) or is SIGKILLed mid-collective makes the others fail within the timeout plus a
// small bound, naming the dead rank, and refuse later calls; a peer that never joins makes
// creation fail within the timeout naming it. Children report through files; only the parent
// uses gtest.
#include <cstdio>

#include "comm/file_store.h"
#include "comm/tcp_store.h"
#include "gloo_test_util.h"

namespace zt::comm {
namespace {

using namespace zt::comm::testing;

template <typename T>
Tensor View(std::vector<T>& v) {
  return Tensor(v.data(), DTypeOf<T>::value, Shape{static_cast<int64_t>(v.size())});
}

template <typename T>
void Dump(const std::string& path, const std::vector<T>& v) {
  WriteFile(path, std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T)));
}
template <typename T>
std::vector<T> Load(const std::string& path) {
  std::string s = ReadFile(path);
  std::vector<T> v(s.size() / sizeof(T));
  std::memcpy(v.data(), s.data(), v.size() * sizeof(T));
  return v;
}

int Fail(int rank, const std::string& what, const Status& s) {
  std::fprintf(stderr, "rank %d: %s: %s\n", rank, what.c_str(), s.ToString().c_str());
  return 1;
}

constexpr int64_t kTotal = 1001;  // all-reduce elements (divisible by no world size tested)
constexpr int64_t kSlice = 9;     // reduce-scatter elements per rank
constexpr int64_t kGather = 5;    // all-gather elements per rank
constexpr int kRoot = 1;

// One rank of the operations run: writes its results under dir as r<rank>_<op>.
int OpsChild(Store& store, int rank, int world, const std::string& dir) {
  auto comm = CreateGlooCommunicator(store, rank, world, milliseconds(10000));
  if (!comm.ok()) return Fail(rank, "create", comm.status());
  Communicator& c = **comm;
  std::string out = dir + "/r" + std::to_string(rank) + "_";
  std::vector<float> ar = Values(1, rank, kTotal);
  if (Status s = c.Wait(c.AllReduce(View(ar), ReduceOp::kSum)); !s.ok()) return Fail(rank, "all_reduce", s);
  Dump(out + "ar", ar);
  std::vector<BFloat16> rs_in = Convert<BFloat16>(Values(2, rank, world * kSlice)), rs(kSlice);
  if (Status s = c.Wait(c.ReduceScatter(View(rs_in), View(rs), ReduceOp::kAvg)); !s.ok())
    return Fail(rank, "reduce_scatter", s);
  Dump(out + "rs", rs);
  std::vector<int64_t> ag_in(kGather), ag(world * kGather);
  for (int64_t i = 0; i < kGather; ++i) ag_in[i] = (int64_t{1} << 40) * rank + i;
  if (Status s = c.Wait(c.AllGather(View(ag_in), View(ag))); !s.ok()) return Fail(rank, "all_gather", s);
  Dump(out + "ag", ag);
  std::vector<Half> bc = Convert<Half>(Values(3, rank, 6));
  if (Status s = c.Wait(c.Broadcast(View(bc), kRoot)); !s.ok()) return Fail(rank, "broadcast", s);
  Dump(out + "bc", bc);
  std::vector<int32_t> send(4, 100 + rank), recv(4, -1);
  auto ws = c.Send(View(send), (rank + 1) % world, 3);
  auto wr = c.Recv(View(recv), (rank + world - 1) % world, 3);
  if (Status s = wr->Wait(c.timeout()); !s.ok()) return Fail(rank, "recv", s);
  if (Status s = ws->Wait(c.timeout()); !s.ok()) return Fail(rank, "send", s);
  Dump(out + "p2p", recv);
  if (Status s = c.Wait(c.Barrier()); !s.ok()) return Fail(rank, "barrier", s);
  return 0;
}

void CheckOps(int world, const std::string& dir) {
  std::vector<std::vector<float>> ar_in;
  std::vector<std::vector<BFloat16>> rs_in;
  for (int r = 0; r < world; ++r) {
    ar_in.push_back(Values(1, r, kTotal));
    rs_in.push_back(Convert<BFloat16>(Values(2, r, world * kSlice)));
  }
  auto ar_ref = RingReference(ar_in, (kTotal + world - 1) / world, false);
  auto rs_ref = RingReference(rs_in, kSlice, true);
  auto bc_ref = Convert<Half>(Values(3, kRoot, 6));
  for (int r = 0; r < world; ++r) {
    std::string in = dir + "/r" + std::to_string(r) + "_";
    EXPECT_EQ(Bits32(Load<float>(in + "ar")), Bits32(ar_ref)) << "all_reduce on rank " << r;
    EXPECT_EQ(Bits16(Load<BFloat16>(in + "rs")),
              Bits16(std::vector<BFloat16>(rs_ref.begin() + r * kSlice, rs_ref.begin() + (r + 1) * kSlice)))
        << "reduce_scatter on rank " << r;
    auto ag = Load<int64_t>(in + "ag");
    ASSERT_EQ(ag.size(), static_cast<size_t>(world * kGather));
    for (int k = 0; k < world; ++k)
      for (int64_t i = 0; i < kGather; ++i) EXPECT_EQ(ag[k * kGather + i], (int64_t{1} << 40) * k + i);
    EXPECT_EQ(Bits16(Load<Half>(in + "bc")), Bits16(bc_ref)) << "broadcast on rank " << r;
    EXPECT_EQ(Load<int32_t>(in + "p2p"), std::vector<int32_t>(4, 100 + (r + world - 1) % world)) << "rank " << r;
  }
}

TEST(GlooProcesses, OperationsOverFileStoreMatchReferenceInTwoRuns) {
  const int world = 3;
  std::vector<std::string> runs;
  for (int run = 0; run < 2; ++run) {
    ScopedTempDir tmp("ops");
    const std::string& dir = tmp.path();
    auto st = RunProcesses(world, milliseconds(20000), [&](int rank) {
      FileStore store(dir + "/store", milliseconds(10000));
      return OpsChild(store, rank, world, dir);
    });
    for (int r = 0; r < world; ++r) {
      ASSERT_TRUE(WIFEXITED(st[r]) && WEXITSTATUS(st[r]) == 0) << "rank " << r << " wait status " << st[r];
    }
    CheckOps(world, dir);
    runs.push_back(ReadFile(dir + "/r0_ar") + ReadFile(dir + "/r1_rs"));
  }
  EXPECT_EQ(runs[0], runs[1]) << "two runs differ";
}

TEST(GlooProcesses, OperationsOverTcpStore) {
  const int world = 4;
  auto token = GenerateToken();
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  auto server = TcpStoreServer::Start("127.0.0.1", 0, *token);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const int port = (*server)->port();
  ScopedTempDir tmp("tcp");
  const std::string& dir = tmp.path();
  auto st = RunProcesses(world, milliseconds(20000), [&](int rank) {
    auto store = ConnectTcpStore("127.0.0.1", port, *token, milliseconds(10000));
    if (!store.ok()) return Fail(rank, "connect store", store.status());
    return OpsChild(**store, rank, world, dir);
  });
  for (int r = 0; r < world; ++r) {
    ASSERT_TRUE(WIFEXITED(st[r]) && WEXITSTATUS(st[r]) == 0) << "rank " << r << " wait status " << st[r];
  }
  CheckOps(world, dir);
}

// What a surviving rank saw: the failing call's status and duration, and a later call's status.
struct Report {
  int code = -1;
  int64_t ms = -1;
  std::string message, later;
};

void WriteReport(const std::string& path, const Status& s, int64_t ms, const Status& later) {
  WriteFile(path, std::to_string(static_cast<int>(s.code())) + "\n" + std::to_string(ms) + "\n" + s.message() +
                      "\n" + later.message());
}

Report ReadReport(const std::string& path) {
  std::string s = ReadFile(path);
  Report r;
  size_t a = s.find('\n'), b = s.find('\n', a + 1), c = s.find('\n', b + 1);
  if (a == std::string::npos || b == std::string::npos || c == std::string::npos) return r;
  r.code = std::stoi(s.substr(0, a));
  r.ms = std::stoll(s.substr(a + 1, b - a - 1));
  r.message = s.substr(b + 1, c - b - 1);
  r.later = s.substr(c + 1);
  return r;
}

// Survivors: two warm-up all-reduces, then `op`, which the victim never joins (it exits or is
// killed); each writes a Report. The victim runs `victim(comm)` after the warm-up.
// Survivors keep their communicator for `linger` after failing (so nobody learns of a failure
// from a survivor's process exiting).
using Op = std::function<Status(Communicator&, std::vector<float>&)>;
void RunWithDyingPeer(int world, int victim_rank, milliseconds timeout, milliseconds linger, const std::string& dir,
                      const Op& op, const std::function<void(Communicator&)>& victim,
                      const std::function<void(const std::vector<pid_t>&)>& parent) {
  auto st = RunProcesses(
      world, timeout * 3 + milliseconds(10000),
      [&](int rank) {
        FileStore store(dir + "/store", timeout);
        auto comm = CreateGlooCommunicator(store, rank, world, timeout);
        if (!comm.ok()) return Fail(rank, "create", comm.status());
        Communicator& c = **comm;
        std::vector<float> x(1 << 16, 1.0f);
        for (int i = 0; i < 2; ++i) {
          if (Status s = c.Wait(c.AllReduce(View(x), ReduceOp::kSum)); !s.ok()) return Fail(rank, "warm-up", s);
        }
        if (rank == victim_rank) {
          victim(c);
          return 3;
        }
        WriteFile(dir + "/started" + std::to_string(rank), "");
        auto t0 = Clock::now();
        Status s = op(c, x);
        int64_t ms = MsSince(t0);
        Status later = c.Wait(c.Barrier());
        WriteReport(dir + "/report" + std::to_string(rank), s, ms, later);
        std::this_thread::sleep_for(linger);
        return 0;
      },
      parent);
  for (int r = 0; r < world; ++r) {
    if (r == victim_rank) continue;
    EXPECT_TRUE(WIFEXITED(st[r]) && WEXITSTATUS(st[r]) == 0) << "rank " << r << " wait status " << st[r];
  }
}

void CheckSurvivors(int world, int victim, milliseconds timeout, const std::string& dir, int64_t slack_ms) {
  const std::string dead = "rank " + std::to_string(victim) + " disconnected";
  for (int r = 0; r < world; ++r) {
    if (r == victim) continue;
    Report rep = ReadReport(dir + "/report" + std::to_string(r));
    SCOPED_TRACE("rank " + std::to_string(r) + ": " + rep.message);
    EXPECT_EQ(rep.code, static_cast<int>(StatusCode::kUnavailable));
    EXPECT_NE(rep.message.find(dead), std::string::npos);
    EXPECT_NE(rep.message.find("cannot continue"), std::string::npos);
    EXPECT_GE(rep.ms, 0);
    EXPECT_LE(rep.ms, timeout.count() + slack_ms);
    // Faster than the timeout: a rank that finds a dead peer closes its connections, so ranks
    // blocked on it (not on the dead one) fail at once too.
    EXPECT_LT(rep.ms, timeout.count());
    EXPECT_NE(rep.later.find("unusable"), std::string::npos) << rep.later;
    EXPECT_NE(rep.later.find(dead), std::string::npos) << rep.later;
  }
}

TEST(GlooProcesses, PeerThatExitsMidCollectiveIsNamed) {
  const int world = 3, victim = 1;
  const milliseconds timeout(3000);
  ScopedTempDir tmp("exit");
  const std::string& dir = tmp.path();
  // The survivors wait in gloo's own broadcast, from the rank that leaves.
  auto broadcast = [&](Communicator& c, std::vector<float>& x) { return c.Wait(c.Broadcast(View(x), victim)); };
  RunWithDyingPeer(world, victim, timeout, milliseconds(0), dir, broadcast, [&](Communicator&) {
    // Let the survivors enter the collective, then leave without a word.
    std::this_thread::sleep_for(milliseconds(300));
    _exit(0);
  }, nullptr);
  CheckSurvivors(world, victim, timeout, dir, 1000);
}

TEST(GlooProcesses, PeerKilledMidCollectiveIsNamedByNeighboursAndOthers) {
  // With 4 ranks, rank 0 is not a ring neighbour of rank 2: it must learn who died from its own
  // broken connection or from the neighbours' reports, not blame the neighbours.
  const int world = 4, victim = 2;
  const milliseconds timeout(2000);
  ScopedTempDir tmp("kill");
  const std::string& dir = tmp.path();
  auto all_reduce = [](Communicator& c, std::vector<float>& x) {
    return c.Wait(c.AllReduce(View(x), ReduceOp::kSum));
  };
  auto hang = [](Communicator&) { std::this_thread::sleep_for(milliseconds(60000)); };
  RunWithDyingPeer(
      world, victim, timeout, timeout, dir, all_reduce, hang,
      [&](const std::vector<pid_t>& pids) {
        // Kill the victim once every survivor is inside the collective.
        auto deadline = Clock::now() + milliseconds(20000);
        for (int r = 0; r < world; ++r) {
          if (r == victim) continue;
          while (access((dir + "/started" + std::to_string(r)).c_str(), F_OK) != 0 && Clock::now() < deadline)
            std::this_thread::sleep_for(milliseconds(5));
        }
        std::this_thread::sleep_for(milliseconds(200));
        kill(pids[victim], SIGKILL);
      });
  CheckSurvivors(world, victim, timeout, dir, 1000);
}

TEST(GlooProcesses, PeerThatNeverJoinsIsNamed) {
  const int world = 3;
  const milliseconds timeout(1000);
  ScopedTempDir tmp("join");
  const std::string& dir = tmp.path();
  auto st = RunProcesses(world, milliseconds(15000), [&](int rank) {
    if (rank == 2) return 0;  // never starts its communicator
    FileStore store(dir + "/store", timeout);
    auto t0 = Clock::now();
    auto comm = CreateGlooCommunicator(store, rank, world, timeout);
    WriteReport(dir + "/report" + std::to_string(rank), comm.status(), MsSince(t0), OkStatus());
    return 0;
  });
  for (int r : {0, 1}) {
    ASSERT_TRUE(WIFEXITED(st[r]) && WEXITSTATUS(st[r]) == 0);
    Report rep = ReadReport(dir + "/report" + std::to_string(r));
    EXPECT_EQ(rep.code, static_cast<int>(StatusCode::kDeadlineExceeded)) << rep.message;
    EXPECT_NE(rep.message.find("rank 2 never joined"), std::string::npos) << rep.message;
    EXPECT_GE(rep.ms, 900);
    EXPECT_LE(rep.ms, 1000 + 1000);
  }
}

}  // namespace
}  // namespace zt::comm
