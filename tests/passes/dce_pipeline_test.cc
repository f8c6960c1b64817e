// Dead-code elimination (before/after IR text, including graphs it must leave unchanged) and the
// pass pipeline (verification after every pass with the culprit named, IR dumps captured or
// written for DumpAfter("<pass>") and "all").
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ir/builder.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "passes/dce.h"
#include "passes/memory_planner.h"
#include "passes/pass_text.h"
#include "passes/pipeline.h"

namespace zt::passes {
namespace {

std::unique_ptr<ir::Graph> Parse(const std::string& text) { return testing::ParseVerified(text); }

// Runs DCE on `before`; expects the printed result to be `after` (the input unchanged when
// `after` is empty) and Run's result to say whether anything changed (pass_text.h).
void ExpectDce(const std::string& before, const std::string& after) {
  DeadCodeElimination dce;
  testing::ExpectRewrite(dce, before, after);
}

TEST(Dce, RemovesUnusedNodesToAFixpoint) {
  ExpectDce(R"(graph "g" {
  input %x : f32[2,3]
  input %y : f32[3]
  %a : f32[2,3] = add(%x, %y)
  %b : f32[2,3] = mul(%x, %y)
  %c : f32[2,3] = scale(%b) {alpha=2.0}
  %d : f32[2,3] = scale(%c) {alpha=3.0}
  %e : f32[] = reduce_sum_to(%a) {shape=[]}
  output %a
}
)",
            R"(graph "g" {
  input %x : f32[2,3]
  input %y : f32[3]
  %a : f32[2,3] = add(%x, %y)
  output %a
}
)");
}

constexpr const char* kTraining = R"(graph "g" {
  input %x : f32[4]
  input %s : f32[5]
  input %ss : f32[]
  param %w : f32[4]
  state %m : f32[4]
  state %v : f32[4]
  %wx : f32[4] = mul(%x, %w)
  %l : f32[] = reduce_sum_to(%wx) {shape=[]}
  %dead : f32[4] = scale(%wx) {alpha=2.0}
  %gw : f32[4] !gradients = scale(%x) {alpha=1.0} phase=backward
  %g2 : f32[4] = scale(%gw) {alpha=0.5} phase=backward
  %dead2 : f32[4] = scale(%g2) {alpha=0.5} phase=backward
  %w2 : f32[4], %m2 : f32[4], %v2 : f32[4] = adamw(%w, %g2, %m, %v, %s, %ss) {beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0.0} phase=optimizer
  loss %l
  grad %w = %gw
}
)";

TEST(Dce, KeepsLossGradientsAndSideEffects) {
  // %l is the loss, %gw a gradient; adamw has side effects (its outputs are unused) and keeps its
  // inputs' producers alive. Only %dead and %dead2 go.
  ExpectDce(kTraining, R"(graph "g" {
  input %x : f32[4]
  input %s : f32[5]
  input %ss : f32[]
  param %w : f32[4]
  state %m : f32[4]
  state %v : f32[4]
  %wx : f32[4] = mul(%x, %w)
  %l : f32[] = reduce_sum_to(%wx) {shape=[]}
  %gw : f32[4] !gradients = scale(%x) {alpha=1.0} phase=backward
  %g2 : f32[4] = scale(%gw) {alpha=0.5} phase=backward
  %w2 : f32[4], %m2 : f32[4], %v2 : f32[4] = adamw(%w, %g2, %m, %v, %s, %ss) {beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0.0} phase=optimizer
  loss %l
  grad %w = %gw
}
)");
}

TEST(Dce, OrderingEdgesKeepTheirTargets) {
  // %p has no users, but a live node depends on it.
  ExpectDce(R"(graph "g" {
  input %x : f32[3]
  %p : f32[3] = scale(%x) {alpha=2.0}
  %q : f32[3] = scale(%p) {alpha=2.0}
  %r : f32[3] = scale(%x) {alpha=3.0} deps=[#0]
  output %r
}
)",
            R"(graph "g" {
  input %x : f32[3]
  %p : f32[3] = scale(%x) {alpha=2.0}
  %r : f32[3] = scale(%x) {alpha=3.0} deps=[#0]
  output %r
}
)");
}

TEST(Dce, LeavesAGraphWithNothingDeadUnchanged) {
  ExpectDce(R"(graph "g" {
  input %x : f32[2,3]
  input %y : f32[3]
  %a : f32[2,3] = add(%x, %y) stream=1
  %b : f32[2,3] = mul(%a, %y) phase=backward deps=[#0]
  %c : f32[3] = reduce_sum_to(%b) {shape=[3]}
  output %c
  output %a
}
)",
            "");
  ExpectDce("graph \"empty\" {\n  input %x : f32[2]\n  output %x\n}\n", "");
  // Removing everything: no outputs at all.
  ExpectDce("graph \"g\" {\n  input %x : f32[2]\n  %y : f32[2] = scale(%x) {alpha=1.0}\n}\n",
            "graph \"g\" {\n  input %x : f32[2]\n}\n");
}

// --- Pipeline ------------------------------------------------------------------------------------

// A pass that corrupts the graph on purpose: declares the first node's output with a wrong shape.
class BreakingPass final : public Pass {
 public:
  std::string name() const override { return "breaker"; }
  StatusOr<bool> Run(ir::Graph& g) override {
    g.nodes()[0]->outputs[0]->shape = Shape{99};
    return true;
  }
};

class FailingPass final : public Pass {
 public:
  std::string name() const override { return "failer"; }
  StatusOr<bool> Run(ir::Graph&) override { return FailedPrecondition("cannot do it"); }
};

class CountingPass final : public Pass {
 public:
  explicit CountingPass(int* runs) : runs_(runs) {}
  std::string name() const override { return "counter"; }
  StatusOr<bool> Run(ir::Graph&) override {
    ++*runs_;
    return false;
  }

 private:
  int* runs_;
};

// Pipelines read ZT_DUMP_IR / ZT_DUMP_DIR when constructed; these tests want neither.
class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("ZT_DUMP_IR");
    unsetenv("ZT_DUMP_DIR");
  }
};

TEST_F(PipelineTest, VerifiesAfterEachPassAndNamesTheCulprit) {
  auto g = Parse(kTraining);
  int runs = 0;
  Pipeline p;
  p.Add(std::make_unique<CountingPass>(&runs));
  p.Add(std::make_unique<BreakingPass>());
  p.Add(std::make_unique<CountingPass>(&runs));
  Status s = p.Run(*g);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("graph after pass 'breaker' is invalid"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("node #0 'mul' -> %wx"), std::string::npos) << s.ToString();
  EXPECT_EQ(runs, 1) << "passes after the broken one do not run";
}

TEST_F(PipelineTest, PassErrorsAndInvalidInputAreNamed) {
  auto g = Parse(kTraining);
  Pipeline p;
  p.Add(std::make_unique<FailingPass>());
  Status s = p.Run(*g);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "pass 'failer': cannot do it");

  g->nodes()[1]->stream = 5;
  int runs = 0;
  Pipeline q;
  q.Add(std::make_unique<CountingPass>(&runs));
  s = q.Run(*g);
  EXPECT_NE(s.message().find("graph before the first pass: node #1 'reduce_sum_to'"), std::string::npos) << s.ToString();
  EXPECT_EQ(runs, 0);
}

TEST_F(PipelineTest, CapturesDumpsForNamedPasses) {
  auto g = Parse(kTraining);
  std::vector<std::pair<std::string, std::string>> dumps;
  int runs = 0;
  Pipeline p;
  p.Add(std::make_unique<CountingPass>(&runs));
  p.Add(std::make_unique<DeadCodeElimination>());
  p.Add(std::make_unique<MemoryPlanner>());
  p.DumpAfter("dce");
  p.CaptureDumps(&dumps);
  ASSERT_TRUE(p.Run(*g).ok());
  ASSERT_EQ(dumps.size(), 1u);
  EXPECT_EQ(dumps[0].first, "dce");
  EXPECT_EQ(dumps[0].second.find("%dead"), std::string::npos);
  EXPECT_EQ(dumps[0].second.find("@"), std::string::npos) << "dumped before the planner ran";
  auto reparsed = ir::ParseGraph(dumps[0].second);
  EXPECT_TRUE(reparsed.ok()) << reparsed.status().ToString();
}

TEST_F(PipelineTest, CapturesDumpsForAll) {
  auto g = Parse(kTraining);
  std::vector<std::pair<std::string, std::string>> dumps;
  int runs = 0;
  Pipeline p;
  p.Add(std::make_unique<DeadCodeElimination>());
  p.Add(std::make_unique<CountingPass>(&runs));
  p.Add(std::make_unique<MemoryPlanner>());
  p.DumpAfter("all");
  p.CaptureDumps(&dumps);
  ASSERT_TRUE(p.Run(*g).ok());
  ASSERT_EQ(dumps.size(), 4u);
  EXPECT_EQ(dumps[0].first, "input");
  EXPECT_EQ(dumps[0].second, kTraining);
  EXPECT_EQ(dumps[1].first, "dce");
  EXPECT_EQ(dumps[2].first, "counter");
  EXPECT_EQ(dumps[2].second, dumps[1].second);
  EXPECT_EQ(dumps[3].first, "memory_plan");
  EXPECT_EQ(dumps[3].second, ir::PrintGraph(*g));
  EXPECT_NE(dumps[3].second.find(" @0"), std::string::npos);
}

TEST_F(PipelineTest, DumpAfterFromEnvironmentAndToADirectory) {
  std::string dir = ::testing::TempDir() + "zt_dumps_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  setenv("ZT_DUMP_IR", "memory_plan,nosuchpass", 1);
  setenv("ZT_DUMP_DIR", dir.c_str(), 1);
  Pipeline p;  // reads the environment here
  unsetenv("ZT_DUMP_IR");
  unsetenv("ZT_DUMP_DIR");
  p.Add(std::make_unique<DeadCodeElimination>());
  p.Add(std::make_unique<MemoryPlanner>());
  auto g = Parse(kTraining);
  ASSERT_TRUE(p.Run(*g).ok());
  std::ifstream f(dir + "/2-memory_plan.ir");
  ASSERT_TRUE(f.good()) << "missing " << dir << "/2-memory_plan.ir";
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), ir::PrintGraph(*g));
  EXPECT_FALSE(std::filesystem::exists(dir + "/1-dce.ir"));
  std::filesystem::remove_all(dir);

  Pipeline bad;
  bad.set_dump_dir(dir + "/does/not/exist");
  bad.DumpAfter("dce");
  bad.Add(std::make_unique<DeadCodeElimination>());
  auto g2 = Parse(kTraining);
  Status s = bad.Run(*g2);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("1-dce.ir"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace zt::passes
