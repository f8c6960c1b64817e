// Worker environment detection for every launcher flavour (ztrain launch / torchrun-style, Open
// MPI, MPICH/PMI, Slurm, none), the precedence between them, malformed and inconsistent values
// (each error names the variable), and ConnectJob: in-process store, rank-0-hosted TCP store with
// threads playing ranks, and its missing-token / missing-address errors.
#include "launch/worker_env.h"

#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "comm/tcp_store.h"
#include "launch/launch_test_util.h"

namespace zt::launch {
namespace {

using Vars = std::map<std::string, std::string>;

StatusOr<WorkerEnv> Detect(const Vars& vars) {
  return DetectWorkerEnv([&](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  });
}

void ExpectError(const Vars& vars, const std::string& needle) {
  auto e = Detect(vars);
  ASSERT_FALSE(e.ok()) << "accepted: " << e->Describe();
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find(needle), std::string::npos)
      << "message: " << e.status().message() << "\nexpected to contain: " << needle;
}

void ExpectPlace(const StatusOr<WorkerEnv>& e, Launcher l, int rank, int size, int local_rank, int local_size) {
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->launcher, l) << LauncherName(e->launcher);
  EXPECT_EQ(e->rank, rank);
  EXPECT_EQ(e->world_size, size);
  EXPECT_EQ(e->local_rank, local_rank);
  EXPECT_EQ(e->local_world_size, local_size);
}

TEST(WorkerEnv, NothingSetIsOneProcess) {
  auto e = Detect({});
  ExpectPlace(e, Launcher::kNone, 0, 1, 0, 1);
  EXPECT_FALSE(e->store.has_value());
  EXPECT_EQ(e->master_port, 0);
  EXPECT_TRUE(e->master_addr.empty());
  // Empty values count as unset.
  ExpectPlace(Detect({{"RANK", ""}, {"WORLD_SIZE", ""}, {"ZT_STORE", ""}}), Launcher::kNone, 0, 1, 0, 1);
}

TEST(WorkerEnv, AgentVariables) {
  auto e = Detect({{"RANK", "5"},
                   {"WORLD_SIZE", "8"},
                   {"LOCAL_RANK", "1"},
                   {"LOCAL_WORLD_SIZE", "4"},
                   {"MASTER_ADDR", "node0"},
                   {"MASTER_PORT", "29500"},
                   {"ZT_STORE", "node0:29500"},
                   {"ZT_STORE_TOKEN", "abc123"}});
  ExpectPlace(e, Launcher::kAgent, 5, 8, 1, 4);
  EXPECT_EQ(e->master_addr, "node0");
  EXPECT_EQ(e->master_port, 29500);
  ASSERT_TRUE(e->store.has_value());
  EXPECT_EQ(e->store->host, "node0");
  EXPECT_EQ(e->store->port, 29500);
  EXPECT_EQ(e->token, "abc123");
  EXPECT_EQ(e->Describe(), "rank 5/8 (local 1/4) from ztrain launch");
  // The same variables without ZT_STORE: torchrun or set by hand.
  ExpectPlace(Detect({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}, {"LOCAL_WORLD_SIZE", "2"}}),
              Launcher::kEnv, 0, 2, 0, 2);
  EXPECT_EQ(e->restart_count, 0) << "ZT_RESTART_COUNT unset: the first gang";
  auto again = Detect({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                       {"ZT_STORE", "node0:29500"}, {"ZT_RESTART_COUNT", "3"}});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->restart_count, 3);
  ExpectError({{"ZT_RESTART_COUNT", "-1"}}, "ZT_RESTART_COUNT='-1' is not an integer");
  ExpectError({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"ZT_RESTART_COUNT", "two"}}, "ZT_RESTART_COUNT='two'");
  auto v6 = Detect({{"ZT_STORE", "[::1]:1234"}});
  ASSERT_TRUE(v6.ok()) << v6.status().ToString();
  EXPECT_EQ(v6->store->host, "::1");
  EXPECT_EQ(v6->store->port, 1234);
}

TEST(WorkerEnv, OpenMpi) {
  ExpectPlace(Detect({{"OMPI_COMM_WORLD_RANK", "3"},
                      {"OMPI_COMM_WORLD_SIZE", "4"},
                      {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                      {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}}),
              Launcher::kOpenMpi, 3, 4, 1, 2);
}

TEST(WorkerEnv, MpichHydra) {
  ExpectPlace(Detect({{"PMI_RANK", "2"}, {"PMI_SIZE", "3"}, {"MPI_LOCALRANKID", "2"}, {"MPI_LOCALNRANKS", "3"}}),
              Launcher::kMpich, 2, 3, 2, 3);
}

TEST(WorkerEnv, SlurmStep) {
  // srun over 3 nodes with 2, 2 and 1 tasks: this is the task on the third node.
  ExpectPlace(Detect({{"SLURM_PROCID", "4"},
                      {"SLURM_STEP_NUM_TASKS", "5"},
                      {"SLURM_NTASKS", "8"},  // the allocation's, ignored inside a step
                      {"SLURM_LOCALID", "0"},
                      {"SLURM_NODEID", "2"},
                      {"SLURM_STEP_TASKS_PER_NODE", "2(x2),1"}}),
              Launcher::kSlurm, 4, 5, 0, 1);
  ExpectPlace(Detect({{"SLURM_PROCID", "1"},
                      {"SLURM_STEP_NUM_TASKS", "6"},
                      {"SLURM_LOCALID", "1"},
                      {"SLURM_NODEID", "0"},
                      {"SLURM_STEP_TASKS_PER_NODE", "3(x2)"}}),
              Launcher::kSlurm, 1, 6, 1, 3);
  // Without a step: the allocation's variables, or SLURM_NTASKS_PER_NODE.
  ExpectPlace(Detect({{"SLURM_PROCID", "1"},
                      {"SLURM_NTASKS", "4"},
                      {"SLURM_LOCALID", "1"},
                      {"SLURM_NODEID", "0"},
                      {"SLURM_TASKS_PER_NODE", "2,2"}}),
              Launcher::kSlurm, 1, 4, 1, 2);
  ExpectPlace(
      Detect({{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "1"}, {"SLURM_NTASKS_PER_NODE", "2"}}),
      Launcher::kSlurm, 3, 4, 1, 2);
}

TEST(WorkerEnv, PrecedenceAgentThenMpiThenSlurm) {
  // An agent started under srun: its workers follow RANK, not SLURM_PROCID.
  ExpectPlace(Detect({{"RANK", "1"},
                      {"WORLD_SIZE", "2"},
                      {"LOCAL_RANK", "1"},
                      {"LOCAL_WORLD_SIZE", "2"},
                      {"SLURM_PROCID", "0"},
                      {"SLURM_NTASKS", "1"},
                      {"SLURM_LOCALID", "0"},
                      {"SLURM_NTASKS_PER_NODE", "1"}}),
              Launcher::kEnv, 1, 2, 1, 2);
  // An agent started by mpirun (one per node): its workers follow RANK, not Open MPI's.
  ExpectPlace(Detect({{"RANK", "3"},
                      {"WORLD_SIZE", "4"},
                      {"LOCAL_RANK", "1"},
                      {"LOCAL_WORLD_SIZE", "2"},
                      {"OMPI_COMM_WORLD_RANK", "1"},
                      {"OMPI_COMM_WORLD_SIZE", "2"},
                      {"OMPI_COMM_WORLD_LOCAL_RANK", "0"},
                      {"OMPI_COMM_WORLD_LOCAL_SIZE", "1"}}),
              Launcher::kEnv, 3, 4, 1, 2);
  // mpirun inside a Slurm allocation: Open MPI's variables win.
  ExpectPlace(Detect({{"OMPI_COMM_WORLD_RANK", "1"},
                      {"OMPI_COMM_WORLD_SIZE", "2"},
                      {"OMPI_COMM_WORLD_LOCAL_RANK", "0"},
                      {"OMPI_COMM_WORLD_LOCAL_SIZE", "1"},
                      {"SLURM_PROCID", "0"}}),
              Launcher::kOpenMpi, 1, 2, 0, 1);
}

TEST(WorkerEnv, MalformedValuesNameTheVariable) {
  const Vars ok = {{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"}};
  auto with = [&](const std::string& k, const std::string& v) {
    Vars m = ok;
    m[k] = v;
    return m;
  };
  ExpectError(with("RANK", "one"), "RANK='one' is not an integer");
  ExpectError(with("RANK", "-1"), "RANK='-1' is not an integer");
  ExpectError(with("WORLD_SIZE", "0"), "WORLD_SIZE='0' is not an integer in [1,");
  ExpectError(with("WORLD_SIZE", "2 "), "WORLD_SIZE='2 '");
  ExpectError(with("LOCAL_RANK", "1.5"), "LOCAL_RANK='1.5'");
  ExpectError(with("LOCAL_WORLD_SIZE", "99999999999"), "LOCAL_WORLD_SIZE='99999999999'");
  ExpectError(with("MASTER_PORT", "70000"), "MASTER_PORT='70000' is not a port number");
  ExpectError(with("MASTER_PORT", "http"), "MASTER_PORT='http'");
  ExpectError(with("ZT_STORE", "node0"), "ZT_STORE: store address 'node0' is not host:port");
  ExpectError(with("ZT_STORE", "node0:0"), "ZT_STORE");
  ExpectError({{"OMPI_COMM_WORLD_RANK", "x"}, {"OMPI_COMM_WORLD_SIZE", "2"}}, "OMPI_COMM_WORLD_RANK='x'");
  ExpectError({{"PMI_RANK", "0"}, {"PMI_SIZE", "two"}}, "PMI_SIZE='two'");
  ExpectError({{"SLURM_PROCID", "0"},
               {"SLURM_STEP_NUM_TASKS", "2"},
               {"SLURM_LOCALID", "0"},
               {"SLURM_NODEID", "0"},
               {"SLURM_STEP_TASKS_PER_NODE", "2(x"}},
              "SLURM_STEP_TASKS_PER_NODE='2(x' is not a Slurm task list");
}

TEST(WorkerEnv, InconsistentValuesNameTheVariables) {
  ExpectError({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}, {"LOCAL_WORLD_SIZE", "1"}},
              "RANK=2 is not below WORLD_SIZE (2)");
  ExpectError({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "2"}, {"LOCAL_WORLD_SIZE", "2"}},
              "LOCAL_RANK=2 is not below LOCAL_WORLD_SIZE (2)");
  ExpectError({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}, {"LOCAL_WORLD_SIZE", "3"}},
              "LOCAL_WORLD_SIZE (3) exceeds WORLD_SIZE (2)");
  ExpectError({{"RANK", "0"}}, "WORLD_SIZE is not set but RANK is");
  ExpectError({{"WORLD_SIZE", "4"}}, "RANK is not set but WORLD_SIZE is");
  ExpectError({{"RANK", "0"}, {"WORLD_SIZE", "2"}}, "LOCAL_RANK is not set");
  ExpectError({{"OMPI_COMM_WORLD_RANK", "4"},
               {"OMPI_COMM_WORLD_SIZE", "4"},
               {"OMPI_COMM_WORLD_LOCAL_RANK", "0"},
               {"OMPI_COMM_WORLD_LOCAL_SIZE", "1"}},
              "OMPI_COMM_WORLD_RANK=4 is not below OMPI_COMM_WORLD_SIZE (4)");
  ExpectError({{"PMI_RANK", "0"}, {"PMI_SIZE", "2"}, {"MPI_LOCALRANKID", "0"}}, "MPI_LOCALNRANKS is not set");
  ExpectError({{"SLURM_PROCID", "0"},
               {"SLURM_STEP_NUM_TASKS", "5"},
               {"SLURM_LOCALID", "0"},
               {"SLURM_NODEID", "0"},
               {"SLURM_STEP_TASKS_PER_NODE", "2(x2)"}},
              "SLURM_STEP_TASKS_PER_NODE='2(x2)' adds up to 4 tasks but SLURM_STEP_NUM_TASKS=5");
  ExpectError({{"SLURM_PROCID", "0"},
               {"SLURM_STEP_NUM_TASKS", "4"},
               {"SLURM_LOCALID", "0"},
               {"SLURM_NODEID", "2"},
               {"SLURM_STEP_TASKS_PER_NODE", "2(x2)"}},
              "SLURM_NODEID=2 but SLURM_STEP_TASKS_PER_NODE='2(x2)' lists 2 node(s)");
  ExpectError({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "2"}, {"SLURM_NTASKS_PER_NODE", "2"}},
              "SLURM_LOCALID=2 is not below the tasks on this node (2)");
  ExpectError({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "0"}},
              "SLURM_NTASKS_PER_NODE is not set");
}

TEST(ConnectJob, OneProcessWithoutStoreGetsAnInProcessStore) {
  auto job = ConnectJob(WorkerEnv{});
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->server, nullptr);
  ASSERT_TRUE(job->store->Set("k", "v").ok());
  EXPECT_EQ(*job->store->Get("k"), "v");
  EXPECT_TRUE(job->Finish().ok());
}

TEST(ConnectJob, MpirunWithoutTokenOrAddressIsAClearError) {
  WorkerEnv e;
  e.launcher = Launcher::kOpenMpi;
  e.rank = 1;
  e.world_size = 2;
  e.local_world_size = 2;
  e.local_rank = 1;
  auto job = ConnectJob(e);
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.status().message().find("rank 1 of 2 (Open MPI) needs ZT_STORE_TOKEN"), std::string::npos)
      << job.status().message();
  e.token = "t";
  job = ConnectJob(e);
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.status().message().find("rank 0 hosts the store at MASTER_ADDR:MASTER_PORT"), std::string::npos)
      << job.status().message();
  EXPECT_NE(job.status().message().find("MASTER_ADDR=<unset>"), std::string::npos) << job.status().message();
}

TEST(ConnectJob, RankZeroHostsTheStoreForMpirunStyleJobs) {
  const int kWorld = 3;
  const int port = testing::FreePort();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(kWorld);
  std::vector<int64_t> seen(kWorld, -1);
  for (int r = kWorld - 1; r >= 0; --r) {  // rank 0 last: the others must wait for its server
    threads.emplace_back([&, r] {
      WorkerEnv e;
      e.launcher = Launcher::kOpenMpi;
      e.rank = r;
      e.world_size = kWorld;
      e.local_rank = r;
      e.local_world_size = kWorld;
      e.master_addr = "127.0.0.1";
      e.master_port = port;
      e.token = "secret";
      auto job = ConnectJob(e);
      if (!job.ok()) {
        errors[r] = job.status().ToString();
        return;
      }
      if ((r == 0) != (job->server != nullptr)) errors[r] = "server on the wrong rank";
      auto n = job->store->Add("n", 1);
      if (n.ok() && *n == kWorld) (void)job->store->Set("all", "1");
      Status s = job->store->Wait({"all"});
      auto v = job->store->Add("n", 0);
      if (!s.ok() || !v.ok()) errors[r] = s.ok() ? v.status().ToString() : s.ToString();
      seen[r] = v.ok() ? *v : -1;
      s = job->Finish();
      if (!s.ok()) errors[r] = s.ToString();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < kWorld; ++r) {
    EXPECT_EQ(errors[r], "") << "rank " << r;
    EXPECT_EQ(seen[r], kWorld) << "rank " << r;
  }
}

TEST(ConnectJob, WrongTokenIsRefused) {
  auto token = comm::GenerateToken();
  ASSERT_TRUE(token.ok());
  auto server = comm::TcpStoreServer::Start("127.0.0.1", 0, *token);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  WorkerEnv e;
  e.store = comm::HostPort{"127.0.0.1", (*server)->port()};
  e.token = "not-the-token";
  auto job = ConnectJob(e);
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.status().message().find("could not connect to the job's store at 127.0.0.1:"), std::string::npos)
      << job.status().message();
  e.token = *token;
  job = ConnectJob(e);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->server, nullptr);
  EXPECT_TRUE(job->store->Set("x", "1").ok());
  EXPECT_TRUE(job->Finish().ok());
}

TEST(ConnectJob, EachGangFinishesUnderItsOwnKeys) {
  // The agent's store outlives a gang; a restarted gang's shutdown barrier must not count the
  // arrivals of the gang before it.
  auto server = comm::TcpStoreServer::Start("127.0.0.1", 0, "tok");
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto finish = [&](int restart_count) {
    WorkerEnv e;
    e.launcher = Launcher::kAgent;
    e.world_size = 2;
    e.store = comm::HostPort{"127.0.0.1", (*server)->port()};
    e.token = "tok";
    e.restart_count = restart_count;
    auto job = ConnectJob(e);
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    EXPECT_EQ(job->restart_count, restart_count);
    EXPECT_TRUE(job->Finish().ok());
  };
  finish(0);
  finish(1);
  finish(1);
  auto probe = comm::ConnectTcpStore("127.0.0.1", (*server)->port(), "tok", std::chrono::seconds(5));
  ASSERT_TRUE(probe.ok()) << probe.status().ToString();
  EXPECT_EQ(*(*probe)->Add("zt/job/attempt-0/finished", 0), 1);
  EXPECT_EQ(*(*probe)->Add("zt/job/attempt-1/finished", 0), 2);
  EXPECT_TRUE(*(*probe)->Delete("zt/job/attempt-1/finished/all")) << "gang 1 saw all of its own ranks finish";
  EXPECT_FALSE(*(*probe)->Delete("zt/job/attempt-0/finished/all"));
}

}  // namespace
}  // namespace zt::launch
