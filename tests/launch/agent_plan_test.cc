// PlanAgent: how options and the environment become this node's ranks, store address, token and
// program, and the option errors (each names the option and says what to give).
#include <gtest/gtest.h>
#include <stdlib.h>

#include "ckpt/host_store.h"
#include "data/temp_dir.h"
#include "launch/agent.h"

namespace zt::launch {
namespace {

using data::testing::TempDir;
using data::testing::WriteBytes;

// The plan reads ZT_STORE_TOKEN, ZT_STORE_BIND and ZT_SHM_PREFIX; each test starts without them.
class AgentPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("ZT_STORE_TOKEN");
    unsetenv("ZT_STORE_BIND");
    unsetenv("ZT_SHM_PREFIX");
  }
  void TearDown() override { SetUp(); }

  AgentOptions Options(int nproc) {
    AgentOptions o;
    o.nproc = nproc;
    o.args = {"train", "--config", "run.json"};
    return o;
  }
  void ExpectError(const AgentOptions& o, const std::string& needle) {
    auto p = PlanAgent(o);
    ASSERT_FALSE(p.ok()) << "accepted";
    EXPECT_NE(p.status().message().find(needle), std::string::npos)
        << "message: " << p.status().message() << "\nexpected to contain: " << needle;
  }
};

TEST_F(AgentPlanTest, SingleNodeUsesThisBinaryAFreshTokenAndAnEphemeralPort) {
  auto p = PlanAgent(Options(4));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->nproc, 4);
  EXPECT_EQ(p->world_size, 4);
  EXPECT_EQ(p->first_rank, 0);
  EXPECT_EQ(p->num_nodes, 1);
  EXPECT_TRUE(p->hosts_store);
  EXPECT_EQ(p->bind_host, "127.0.0.1");
  EXPECT_EQ(p->store.host, "127.0.0.1");
  EXPECT_EQ(p->store.port, 0);
  EXPECT_EQ(p->token.size(), 32u);
  EXPECT_NE(p->token, PlanAgent(Options(4))->token) << "each job gets its own token";
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  ASSERT_GT(n, 0);
  EXPECT_EQ(p->program, std::string(self, n));
  EXPECT_EQ(p->argv, (std::vector<std::string>{p->program, "train", "--config", "run.json"}));
}

TEST_F(AgentPlanTest, TokenAndBindComeFromTheEnvironment) {
  setenv("ZT_STORE_TOKEN", "mytoken", 1);
  setenv("ZT_STORE_BIND", "0.0.0.0", 1);
  auto p = PlanAgent(Options(2));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->token, "mytoken");
  EXPECT_EQ(p->bind_host, "0.0.0.0");
  EXPECT_EQ(p->store.host, "127.0.0.1") << "workers connect over loopback to a wildcard bind";
  // --master fixes the port; without ZT_STORE_BIND the store listens on --master's host.
  unsetenv("ZT_STORE_BIND");
  AgentOptions o = Options(2);
  o.master = "127.0.0.2:29511";
  p = PlanAgent(o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->bind_host, "127.0.0.2");
  EXPECT_EQ(p->store.host, "127.0.0.2");
  EXPECT_EQ(p->store.port, 29511);
}

TEST_F(AgentPlanTest, MultiNodeRanksFollowTheHostfile) {
  TempDir dir;
  WriteBytes(dir.File("hosts"), "# three nodes\nn0 slots=2\nn1 slots=3\nn2 slots=1\n");
  setenv("ZT_STORE_TOKEN", "shared", 1);
  const int expect_first[] = {0, 2, 5}, expect_nproc[] = {2, 3, 1};
  for (int node = 0; node < 3; ++node) {
    AgentOptions o = Options(0);
    o.hostfile = dir.File("hosts");
    o.node_rank = node;
    o.master = "n0:29500";
    auto p = PlanAgent(o);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_EQ(p->num_nodes, 3);
    EXPECT_EQ(p->node_rank, node);
    EXPECT_EQ(p->first_rank, expect_first[node]);
    EXPECT_EQ(p->nproc, expect_nproc[node]);
    EXPECT_EQ(p->world_size, 6);
    EXPECT_EQ(p->hosts_store, node == 0);
    EXPECT_EQ(p->store.host, "n0");
    EXPECT_EQ(p->store.port, 29500);
    EXPECT_EQ(p->token, "shared");
  }
  AgentOptions o = Options(3);  // agrees with n1's slots
  o.hostfile = dir.File("hosts");
  o.node_rank = 1;
  o.master = "n0:29500";
  EXPECT_TRUE(PlanAgent(o).ok());
  o.nproc = 2;
  ExpectError(o, "--nproc 2 but " + dir.File("hosts") + " gives n1 slots=3");
  o.nproc = 0;
  o.node_rank = 3;
  ExpectError(o, "--node-rank 3 but " + dir.File("hosts") + " lists 3 node(s)");
  o.node_rank = -1;
  ExpectError(o, "--hostfile needs --node-rank R");
  o.node_rank = 0;
  o.master = "";
  ExpectError(o, "a multi-node job needs --master HOST:PORT");
  o.master = "n0";
  ExpectError(o, "--master: store address 'n0' is not host:port");
  o.master = "n0:29500";
  unsetenv("ZT_STORE_TOKEN");
  ExpectError(o, "a multi-node job needs ZT_STORE_TOKEN");
  o.hostfile = dir.File("missing");
  ExpectError(o, "cannot read hostfile " + dir.File("missing"));
}

TEST_F(AgentPlanTest, HostTierPrefixIsFreshPerAgentUnlessGiven) {
  auto p = PlanAgent(Options(2));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const std::string own = "/zt-" + std::to_string(getpid()) + "-";
  EXPECT_EQ(p->shm_prefix.rfind(own, 0), 0u) << p->shm_prefix;
  EXPECT_GT(p->shm_prefix.size(), own.size());
  EXPECT_TRUE(ckpt::HostStore::CheckPrefix(p->shm_prefix).ok());
  EXPECT_FALSE(p->keep_host_segments);
  EXPECT_NE(p->shm_prefix, PlanAgent(Options(2))->shm_prefix) << "a random id per agent";

  setenv("ZT_SHM_PREFIX", "/zt-myjob", 1);
  p = PlanAgent(Options(2));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->shm_prefix, "/zt-myjob");
  EXPECT_TRUE(p->keep_host_segments);

  AgentOptions o = Options(2);
  o.host_tier = false;  // --no-host-tier
  p = PlanAgent(o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->shm_prefix, "");
  EXPECT_FALSE(p->keep_host_segments);

  setenv("ZT_SHM_PREFIX", "zt-myjob", 1);
  ExpectError(Options(2), "ZT_SHM_PREFIX='zt-myjob' is not a shared-memory name prefix");
  setenv("ZT_SHM_PREFIX", "/zt/a", 1);
  ExpectError(Options(2), "ZT_SHM_PREFIX='/zt/a' is not a shared-memory name prefix");
  setenv("ZT_SHM_PREFIX", "/zt-4242-abc", 1);
  ExpectError(Options(2), "ZT_SHM_PREFIX='/zt-4242-abc' has the form of an agent's own prefix");
  setenv("ZT_SHM_PREFIX", "/zt-4242-abc-x", 1);  // not that form: accepted
  EXPECT_TRUE(PlanAgent(Options(2)).ok());
}

TEST_F(AgentPlanTest, RestartsAreForOneNodeOnly) {
  TempDir dir;
  WriteBytes(dir.File("hosts"), "n0 slots=2\nn1 slots=2\n");
  WriteBytes(dir.File("one"), "n0 slots=2\n");
  setenv("ZT_STORE_TOKEN", "shared", 1);
  AgentOptions o = Options(0);
  o.hostfile = dir.File("hosts");
  o.node_rank = 1;
  o.master = "n0:29500";
  o.max_restarts = 2;
  ExpectError(o, "--max-restarts 2 with " + dir.File("hosts") + "'s 2 nodes: gang restarts work on a single node only");
  o.max_restarts = 0;
  EXPECT_TRUE(PlanAgent(o).ok());
  o.hostfile = dir.File("one");
  o.node_rank = 0;
  o.max_restarts = 2;
  auto p = PlanAgent(o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->max_restarts, 2);
  o = Options(2);
  o.max_restarts = -1;
  ExpectError(o, "--max-restarts must be >= 0");
}

TEST_F(AgentPlanTest, OptionErrors) {
  ExpectError(Options(0), "--nproc N is required");
  ExpectError(Options(-1), "--nproc -1 is not in 1..");
  AgentOptions o = Options(2);
  o.args.clear();
  ExpectError(o, "give the ztrain subcommand to run after `--`");
  o.args = {"launch", "--nproc", "2"};
  ExpectError(o, "cannot run `ztrain launch` themselves");
  o = Options(2);
  o.node_rank = 1;
  ExpectError(o, "--node-rank 1 needs --hostfile");
  o = Options(2);
  o.program = "/nonexistent/worker";
  ExpectError(o, "--program /nonexistent/worker is not an executable file");
  o.program = "no-such-program-in-path-zt";
  ExpectError(o, "was not found in PATH");
  o.program = "sh";  // found in PATH
  auto p = PlanAgent(o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->program.back(), 'h');
  EXPECT_EQ(p->program.front(), '/');
  o.grace_period_s = -1;
  ExpectError(o, "--grace-period must be >= 0");
}

}  // namespace
}  // namespace zt::launch
