// `ztrain launch` end to end: the built binary starts the test worker (launch_test_worker via
// --program) and we check what the workers saw, the agent's exit code and messages, that failed
// jobs leave no worker behind, signal handling, multi-node jobs of two agents on this machine, and
// an mpirun-style job without an agent.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>

#include "launch/launch_test_util.h"

namespace zt::launch {
namespace {

using namespace testing;  // NOLINT
using data::testing::WriteBytes;

TEST(Agent, WorkersGetTheirPlaceStoreAndToken) {
  TempDir dir;
  Result r = RunProcess(Launch({"--nproc", "3"}, {"env", dir.path()}), {}, dir, "agent");
  ASSERT_EQ(r.exit_code(), 0) << r.err;
  std::string store, token;
  for (int rank = 0; rank < 3; ++rank) {
    auto w = Words(ReadBytes(dir.File("env." + std::to_string(rank))));
    // rank world local_rank local_world master_addr master_port store token launcher(2 words)
    ASSERT_EQ(w.size(), 10u) << "rank " << rank;
    EXPECT_EQ(w[0], std::to_string(rank));
    EXPECT_EQ(w[1], "3");
    EXPECT_EQ(w[2], std::to_string(rank));
    EXPECT_EQ(w[3], "3");
    EXPECT_EQ(w[4], "127.0.0.1");
    EXPECT_EQ(w[6], w[4] + ":" + w[5]) << "ZT_STORE is MASTER_ADDR:MASTER_PORT";
    EXPECT_EQ(w[7].size(), 32u) << "a fresh token";
    EXPECT_EQ(w[8] + " " + w[9], "ztrain launch");
    if (rank == 0) {
      store = w[6];
      token = w[7];
    }
    EXPECT_EQ(w[6], store);
    EXPECT_EQ(w[7], token);
  }
  EXPECT_TRUE(Contains(r.err, "ztrain launch: node 0/1: starting 3 worker(s), ranks 0..2 of 3; store at " + store))
      << r.err;
}

TEST(Agent, AllRanksRendezvousThroughTheAgentsStore) {
  TempDir dir;
  Result r = RunProcess(Launch({"--nproc", "4"}, {"rendezvous", dir.path()}), {}, dir, "agent");
  ASSERT_EQ(r.exit_code(), 0) << r.out << r.err;
  std::string first;
  for (int rank = 0; rank < 4; ++rank) {
    std::string text = ReadBytes(dir.File("rendezvous." + std::to_string(rank)));
    auto w = Words(text);
    ASSERT_EQ(w.size(), 6u) << text;
    EXPECT_EQ(w[0], "4");
    EXPECT_EQ(w[1], "4") << "every rank counted in exactly once";
    if (rank == 0) first = text;
    EXPECT_EQ(text, first) << "every rank read the same pids";
  }
}

TEST(Agent, PrefixesWorkerOutputLines) {
  TempDir dir;
  Result r = RunProcess(Launch({"--nproc", "2"}, {"print"}), {}, dir, "agent");
  ASSERT_EQ(r.exit_code(), 0) << r.err;
  for (int rank = 0; rank < 2; ++rank) {
    const std::string p = "[rank " + std::to_string(rank) + "] ";
    EXPECT_TRUE(Contains(r.out, p + "hello from rank " + std::to_string(rank) + " on stdout\n" + p + "second line\n"))
        << r.out;
    EXPECT_TRUE(Contains(r.err, p + "rank " + std::to_string(rank) + " on stderr, no newline\n")) << r.err;
  }
  r = RunProcess(Launch({"--nproc", "1", "--no-prefix"}, {"print"}), {}, dir, "agent2");
  ASSERT_EQ(r.exit_code(), 0) << r.err;
  EXPECT_EQ(r.out, "hello from rank 0 on stdout\nsecond line\n");
}

TEST(Agent, WorkerKilledBySignalStopsTheJob) {
  TempDir dir;
  Result r = RunProcess(Launch({"--nproc", "3", "--grace-period", "30"}, {"kill", "1", dir.path()}), {}, dir, "agent");
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code(), 1) << r.err;
  EXPECT_LT(r.seconds, 15) << "the others stop on SIGTERM, long before the grace period";
  EXPECT_TRUE(Contains(r.err, FailureLine(dir, 1, "was killed by signal 9 (SIGKILL)\n"))) << r.err;
  EXPECT_TRUE(Contains(r.err, "stopping 2 worker(s) with SIGTERM")) << r.err;
  EXPECT_TRUE(Contains(r.err, FailureLine(dir, 0, "was killed by signal 15 (SIGTERM)"))) << r.err;
  ExpectAllGone(dir, 3);
}

TEST(Agent, WorkerExitStatusIsReported) {
  TempDir dir;
  Result r = RunProcess(Launch({"--nproc", "3"}, {"exit", "2", "3", dir.path()}), {}, dir, "agent");
  EXPECT_EQ(r.exit_code(), 1) << r.err;
  EXPECT_TRUE(Contains(r.err, FailureLine(dir, 2, "exited with status 3\n"))) << r.err;
  ExpectAllGone(dir, 3);
}

TEST(Agent, WorkersIgnoringSigtermGetSigkillAfterTheGracePeriod) {
  TempDir dir;
  Result r = RunProcess(Launch({"--nproc", "3", "--grace-period", "1"}, {"exit", "0", "5", dir.path(), "ignore-term"}),
                        {}, dir, "agent");
  EXPECT_EQ(r.exit_code(), 1) << r.err;
  EXPECT_GE(r.seconds, 1.0);
  EXPECT_LT(r.seconds, 15);
  EXPECT_TRUE(Contains(r.err, FailureLine(dir, 0, "exited with status 5"))) << r.err;
  for (int rank : {1, 2}) {
    EXPECT_TRUE(Contains(r.err, "worker rank " + std::to_string(rank) + " (pid " +
                                    std::to_string(ReadPid(dir.File("pid." + std::to_string(rank)))) +
                                    ") is still running; sending SIGKILL"))
        << r.err;
    EXPECT_TRUE(Contains(r.err, FailureLine(dir, rank, "was killed by signal 9 (SIGKILL)"))) << r.err;
  }
  ExpectAllGone(dir, 3);
}

TEST(Agent, SigtermToTheAgentStopsEverything) {
  TempDir dir;
  Proc agent = StartProcess(Launch({"--nproc", "2"}, {"sleep", dir.path()}), {}, dir, "agent");
  ASSERT_TRUE(WaitForFile(dir.File("pid.0"), 20));
  ASSERT_TRUE(WaitForFile(dir.File("pid.1"), 20));
  ASSERT_EQ(kill(agent.pid, SIGTERM), 0);
  Result r = WaitProcess(agent, 30);
  EXPECT_FALSE(r.timed_out);
  ASSERT_TRUE(WIFEXITED(r.status)) << "the agent handles SIGTERM and exits";
  EXPECT_EQ(r.exit_code(), 128 + SIGTERM) << r.err;
  EXPECT_TRUE(Contains(r.err, "received SIGTERM; forwarding it to the workers")) << r.err;
  EXPECT_TRUE(Contains(r.err, FailureLine(dir, 0, "was killed by signal 15 (SIGTERM)"))) << r.err;
  ExpectAllGone(dir, 2);
}

TEST(Agent, SigintToTheAgentIsForwarded) {
  TempDir dir;
  Proc agent = StartProcess(Launch({"--nproc", "2"}, {"sleep", dir.path()}), {}, dir, "agent");
  ASSERT_TRUE(WaitForFile(dir.File("pid.0"), 20));
  ASSERT_TRUE(WaitForFile(dir.File("pid.1"), 20));
  ASSERT_EQ(kill(agent.pid, SIGINT), 0);
  Result r = WaitProcess(agent, 30);
  EXPECT_EQ(r.exit_code(), 128 + SIGINT) << r.err;
  EXPECT_TRUE(Contains(r.err, FailureLine(dir, 1, "was killed by signal 2 (SIGINT)"))) << r.err;
  ExpectAllGone(dir, 2);
}

TEST(Agent, KilledAgentTakesItsWorkersAndTheirChildrenWithIt) {
  // The workers die of their parent-death signal; what they forked (which does not inherit that
  // signal) dies by the agent's guard process, which kills their process groups.
  TempDir dir;
  Proc agent = StartProcess(Launch({"--nproc", "2"}, {"grandchild", dir.path()}), {}, dir, "agent");
  std::vector<pid_t> pids;
  for (const char* name : {"pid.0", "pid.1", "grandchild.0", "grandchild.1"}) {
    ASSERT_TRUE(WaitForFile(dir.File(name), 20)) << name;
    pids.push_back(ReadPid(dir.File(name)));
    ASSERT_TRUE(ProcessExists(pids.back())) << name;
  }
  ASSERT_EQ(kill(agent.pid, SIGKILL), 0);
  Result r = WaitProcess(agent, 30);
  EXPECT_TRUE(WIFSIGNALED(r.status));
  // Both signals are asynchronous; orphans are reaped by init.
  Eventually([&] { return std::none_of(pids.begin(), pids.end(), ProcessExists); }, 10);
  for (size_t i = 0; i < pids.size(); ++i)
    EXPECT_FALSE(ProcessExists(pids[i])) << (i < 2 ? "worker" : "worker's child") << " pid " << pids[i] << " survived";
  ExpectAllGone(dir, 2);
  Eventually([&] { return Contains(ReadBytes(agent.err_path), "its guard sent SIGKILL to 2 worker process group(s)"); },
             5);
  EXPECT_TRUE(Contains(ReadBytes(agent.err_path), "ztrain launch: the agent (pid " + std::to_string(agent.pid) +
                                                      ") died; its guard sent SIGKILL to 2 worker process group(s)"))
      << ReadBytes(agent.err_path);
}

TEST(Agent, BadOptionsAreClearErrors) {
  TempDir dir;
  Result r = RunProcess({kZtrain, "launch", "--", "train", "--config", "x.json"}, {}, dir, "noproc");
  EXPECT_EQ(r.exit_code(), 1);
  EXPECT_TRUE(Contains(r.err, "ztrain launch: error: --nproc N is required")) << r.err;
  r = RunProcess({kZtrain, "launch", "--nproc", "2"}, {}, dir, "noargs");
  EXPECT_EQ(r.exit_code(), 1);
  EXPECT_TRUE(Contains(r.err, "give the ztrain subcommand to run after `--`")) << r.err;
  r = RunProcess({kZtrain, "launch", "--nproc", "2", "--program", dir.File("missing"), "--"}, {}, dir, "noprog");
  EXPECT_EQ(r.exit_code(), 1);
  EXPECT_TRUE(Contains(r.err, "--program " + dir.File("missing") + " is not an executable file")) << r.err;
  r = RunProcess({kZtrain, "launch", "--nproc", "2", "--max-restarts", "-1", "--", "train"}, {}, dir, "restarts");
  EXPECT_NE(r.exit_code(), 0);
}

TEST(Agent, RunsZtrainSubcommandsByDefault) {
  // Without --program the workers are this ztrain binary; a bad config fails in every worker.
  TempDir dir;
  Result r = RunProcess({kZtrain, "launch", "--nproc", "2", "--", "train", "--config", dir.File("missing.json")}, {},
                        dir, "agent");
  EXPECT_EQ(r.exit_code(), 1);
  EXPECT_TRUE(Contains(r.err, "exited with status 1")) << r.err;
  EXPECT_TRUE(Contains(r.err, "] ztrain: error: ")) << r.err;
  EXPECT_TRUE(Contains(r.err, "missing.json")) << r.err;
}

// Two agents on this machine play two nodes: "localhost" and "127.0.0.1" are two hostfile lines.
struct TwoNodes {
  TempDir dir;
  std::string master;
  EnvPairs env = {{"ZT_STORE_TOKEN", "two-node-test-token"}};

  TwoNodes() {
    WriteBytes(dir.File("hosts"), "localhost slots=2\n127.0.0.1 slots=1\n");
    master = "127.0.0.1:" + std::to_string(FreePort());
  }
  std::vector<std::string> Agent(int node, const std::vector<std::string>& worker_args) {
    return Launch({"--hostfile", dir.File("hosts"), "--node-rank", std::to_string(node), "--master", master,
                   "--grace-period", "5"},
                  worker_args);
  }
};

TEST(Agent, MultiNodeJobRendezvousAcrossTwoAgents) {
  TwoNodes job;
  // Node 1 first: its agent and workers must wait for node 0's store.
  Proc n1 = StartProcess(job.Agent(1, {"rendezvous", job.dir.path()}), job.env, job.dir, "node1");
  usleep(300000);
  Proc n0 = StartProcess(job.Agent(0, {"rendezvous", job.dir.path()}), job.env, job.dir, "node0");
  Result r0 = WaitProcess(n0, 60), r1 = WaitProcess(n1, 60);
  ASSERT_EQ(r0.exit_code(), 0) << r0.err;
  ASSERT_EQ(r1.exit_code(), 0) << r1.err;
  EXPECT_TRUE(Contains(r0.err, "node 0/2: starting 2 worker(s), ranks 0..1 of 3")) << r0.err;
  EXPECT_TRUE(Contains(r1.err, "node 1/2: starting 1 worker(s), ranks 2..2 of 3")) << r1.err;
  for (int rank = 0; rank < 3; ++rank) {
    auto w = Words(ReadBytes(job.dir.File("rendezvous." + std::to_string(rank))));
    ASSERT_EQ(w.size(), 5u) << "rank " << rank;
    EXPECT_EQ(w[0], "3");
    EXPECT_EQ(w[1], "3");
  }
}

TEST(Agent, MultiNodeFailureStopsEveryNode) {
  TwoNodes job;
  Proc n0 = StartProcess(job.Agent(0, {"exit", "2", "3", job.dir.path()}), job.env, job.dir, "node0");
  Proc n1 = StartProcess(job.Agent(1, {"exit", "2", "3", job.dir.path()}), job.env, job.dir, "node1");
  Result r0 = WaitProcess(n0, 60), r1 = WaitProcess(n1, 60);
  EXPECT_FALSE(r0.timed_out);
  EXPECT_EQ(r1.exit_code(), 1) << r1.err;
  EXPECT_TRUE(Contains(r1.err, FailureLine(job.dir, 2, "exited with status 3"))) << r1.err;
  EXPECT_EQ(r0.exit_code(), 1) << r0.err;
  EXPECT_TRUE(Contains(r0.err, "another node failed: node 1/2: " + FailureLine(job.dir, 2, "exited").substr(15)))
      << r0.err;
  ExpectAllGone(job.dir, 3);
}

TEST(Agent, MultiNodeFailureAfterAnotherNodeFinishedFailsEveryAgent) {
  // Node 0's workers succeed at once; rank 2 on node 1 fails a second later. Node 0's agent is
  // still waiting for node 1 then, and reports the job as failed.
  TwoNodes job;
  auto agent = [&](int node) {
    return std::vector<std::string>{kZtrain,
                                    "launch",
                                    "--program",
                                    "/bin/sh",
                                    "--hostfile",
                                    job.dir.File("hosts"),
                                    "--node-rank",
                                    std::to_string(node),
                                    "--master",
                                    job.master,
                                    "--",
                                    "-c",
                                    "if [ \"$RANK\" = 2 ]; then sleep 1; exit 3; fi"};
  };
  Proc n0 = StartProcess(agent(0), job.env, job.dir, "node0");
  Proc n1 = StartProcess(agent(1), job.env, job.dir, "node1");
  Result r0 = WaitProcess(n0, 60), r1 = WaitProcess(n1, 60);
  EXPECT_EQ(r1.exit_code(), 1) << r1.err;
  EXPECT_TRUE(Contains(r1.err, "worker rank 2 (pid ")) << r1.err;
  EXPECT_EQ(r0.exit_code(), 1) << r0.err;
  EXPECT_TRUE(Contains(r0.err, "waiting for the other nodes' workers to finish")) << r0.err;
  EXPECT_TRUE(Contains(r0.err, "another node failed: node 1/2: worker rank 2 (pid ")) << r0.err;
  EXPECT_TRUE(Contains(r0.err, ") exited with status 3")) << r0.err;
}

TEST(Agent, MultiNodeWithoutTokenIsRefused) {
  TwoNodes job;
  Result r = RunProcess(job.Agent(0, {"env", job.dir.path()}), {}, job.dir, "node0");
  EXPECT_EQ(r.exit_code(), 1);
  EXPECT_TRUE(Contains(r.err, "a multi-node job needs ZT_STORE_TOKEN")) << r.err;
}

// No agent: the test plays mpirun, setting Open MPI's variables; rank 0 hosts the store.
TEST(MpirunStyle, RanksRendezvousThroughRankZerosStore) {
  TempDir dir;
  const std::string port = std::to_string(FreePort());
  std::vector<Proc> procs;
  for (int rank = 2; rank >= 0; --rank) {
    EnvPairs env = {{"OMPI_COMM_WORLD_RANK", std::to_string(rank)},
                    {"OMPI_COMM_WORLD_SIZE", "3"},
                    {"OMPI_COMM_WORLD_LOCAL_RANK", std::to_string(rank)},
                    {"OMPI_COMM_WORLD_LOCAL_SIZE", "3"},
                    {"MASTER_ADDR", "127.0.0.1"},
                    {"MASTER_PORT", port},
                    {"ZT_STORE_TOKEN", "mpi-token"}};
    procs.push_back(StartProcess({kWorker, "rendezvous", dir.path()}, env, dir, "rank" + std::to_string(rank)));
  }
  for (auto& p : procs) {
    Result r = WaitProcess(p, 60);
    EXPECT_EQ(r.exit_code(), 0) << r.err;
  }
  for (int rank = 0; rank < 3; ++rank) {
    auto w = Words(ReadBytes(dir.File("rendezvous." + std::to_string(rank))));
    ASSERT_EQ(w.size(), 5u) << "rank " << rank;
    EXPECT_EQ(w[1], "3");
  }
}

TEST(MpirunStyle, MissingTokenNamesTheVariable) {
  TempDir dir;
  EnvPairs env = {{"PMI_RANK", "1"},
                  {"PMI_SIZE", "2"},
                  {"MPI_LOCALRANKID", "1"},
                  {"MPI_LOCALNRANKS", "2"},
                  {"MASTER_ADDR", "127.0.0.1"},
                  {"MASTER_PORT", "29555"}};
  Result r = RunProcess({kWorker, "rendezvous", dir.path()}, env, dir, "rank1", 30);
  EXPECT_EQ(r.exit_code(), 99);
  EXPECT_TRUE(Contains(r.err, "rank 1 of 2 (MPICH/PMI) needs ZT_STORE_TOKEN")) << r.err;
}

}  // namespace
}  // namespace zt::launch
