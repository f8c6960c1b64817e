// Executor: selective phases (PhaseMask), host copies with size checks, a missing kernel reported
// at Create naming the node, kernel errors reported naming the node, the memory-mode setting,
// persistent values keeping their contents across steps, phase fences (each stream waits once per
// Run before its first node of the fenced phase) and ReadAsync's range and persistence checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "ir/builder.h"
#include "ir/ops/elementwise.h"
#include "kernels/kernel.h"
#include "runtime/executor.h"
#include "runtime/program.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::GraphRunner;

// Test-only ops: rt_test_nokernel (registered with no kernel) and rt_test_fails (a CPU kernel
// that reports an outside failure).
void RegisterRuntimeTestOps() {
  static const bool done = [] {
    for (const char* name : {"rt_test_nokernel", "rt_test_fails"}) {
      ir::OpDef d;
      d.name = name;
      d.input_names = {"x"};
      d.min_inputs = d.max_inputs = 1;
      d.infer = [](std::span<const ir::TypeSpec> in, const ir::AttrMap&) -> StatusOr<std::vector<ir::TypeSpec>> {
        return std::vector<ir::TypeSpec>{in[0]};
      };
      ir::OpRegistry::Global().Register(std::move(d));
    }
    KernelRegistry::Global().Register("rt_test_fails", DeviceKind::kCPU,
                                      [](const KernelContext&) { return Unavailable("peer went away"); });
    return true;
  }();
  (void)done;
}

std::unique_ptr<Program> Compile(std::unique_ptr<ir::Graph> g) {
  auto p = Program::Compile(std::move(g));
  ZT_CHECK(p.ok()) << p.status().ToString();
  return std::move(*p);
}

// One node per phase, each writing its own output: a = 2x (forward), b = 3x (backward),
// c = 4x (optimizer).
std::unique_ptr<ir::Graph> PhaseGraph() {
  auto g = std::make_unique<ir::Graph>("phases");
  ir::Builder b(g.get());
  ir::Value* x = b.Input("x", DType::kF32, Shape{5});
  ir::Value* a = ir::ops::Scale(b, x, 2.0, "a");
  b.set_phase(ir::Phase::kBackward);
  ir::Value* bb = ir::ops::Scale(b, x, 3.0, "b");
  b.set_phase(ir::Phase::kOptimizer);
  ir::Value* c = ir::ops::Scale(b, x, 4.0, "c");
  g->outputs() = {a, bb, c};
  return g;
}

TEST(Executor, RunsOnlyTheSelectedPhases) {
  GraphRunner r(PhaseGraph());
  r.Set("x", {1, 2, 3, 4, 5});
  const float nan = std::nanf("");
  auto poison = [&] {
    for (const char* n : {"a", "b", "c"}) r.Set(n, std::vector<float>(5, nan));
  };
  auto ran = [&](const char* n) { return !std::isnan(r.Get(n)[0]); };

  struct Case {
    PhaseMask mask;
    bool a, b, c;
  };
  const Case cases[] = {
      {{true, false, false}, true, false, false}, {{false, true, false}, false, true, false},
      {{false, false, true}, false, false, true},  {{true, true, false}, true, true, false},
      {{false, false, false}, false, false, false}, {PhaseMask::All(), true, true, true},
  };
  for (const Case& c : cases) {
    poison();
    r.Run(c.mask);
    EXPECT_EQ(ran("a"), c.a);
    EXPECT_EQ(ran("b"), c.b);
    EXPECT_EQ(ran("c"), c.c);
  }
  EXPECT_EQ(r.Get("c")[4], 20.0f);
  EXPECT_TRUE(PhaseMask::All().Has(ir::Phase::kOptimizer));
  EXPECT_FALSE((PhaseMask{true, false, true}).Has(ir::Phase::kBackward));
}

TEST(Executor, DynamicModeRunsWholeStepsOnly) {
  auto p = Compile(PhaseGraph());
  CpuBackend be;
  ExecutorOptions o;
  o.memory = ExecMemoryMode::kDynamic;
  auto e = Executor::Create(*p, be, o);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ((*e)->memory_mode(), ExecMemoryMode::kDynamic);
  Status s = (*e)->Run({true, false, false});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("ZT_EXEC_MEMORY=arena"), std::string::npos) << s.ToString();
  EXPECT_TRUE((*e)->Run().ok());
}

TEST(Executor, WriteAndReadCheckSizes) {
  auto p = Compile(PhaseGraph());
  CpuBackend be;
  auto e = Executor::Create(*p, be, {ExecMemoryMode::kArena});
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  Executor& ex = **e;
  const ir::Value* x = p->graph().FindValue("x");
  std::vector<float> host = {1, 2, 3, 4, 5};
  Status s = ex.Write(x, host.data(), 4 * 4);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("writing 16 bytes into %x, which has 20"), std::string::npos) << s.ToString();
  s = ex.Write(x, host.data(), 6 * 4);
  EXPECT_FALSE(s.ok());
  ASSERT_TRUE(ex.Write(x, host.data(), 20).ok());
  ASSERT_TRUE(ex.Run().ok());
  std::vector<float> out(6, 0.0f);
  const ir::Value* c = p->graph().FindValue("c");
  s = ex.Read(c, out.data(), 24);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("reading 24 bytes from %c, which has 20"), std::string::npos) << s.ToString();
  EXPECT_FALSE(ex.Read(c, out.data(), 0).ok());
  ASSERT_TRUE(ex.Read(c, out.data(), 20).ok());
  EXPECT_EQ(out, (std::vector<float>{4, 8, 12, 16, 20, 0}));
  EXPECT_EQ(ex.tensor("c").shape, Shape{5});
}

TEST(Executor, MissingKernelIsReportedAtCreateNamingTheNode) {
  RegisterRuntimeTestOps();
  auto g = std::make_unique<ir::Graph>("nok");
  ir::Builder b(g.get());
  ir::Value* x = b.Input("x", DType::kF32, Shape{3});
  ir::Value* y = ir::ops::Scale(b, x, 1.0, "y");
  ir::Value* z = b.Emit1("rt_test_nokernel", {y}, {}, "z");
  g->outputs() = {z};
  auto p = Compile(std::move(g));
  CpuBackend be;
  auto e = Executor::Create(*p, be, {ExecMemoryMode::kArena});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(e.status().message().find("node #1 'rt_test_nokernel' -> %z: no cpu kernel for op 'rt_test_nokernel'"),
            std::string::npos)
      << e.status().ToString();
  EXPECT_EQ(be.stats().live_total(), 0) << "nothing is left allocated";
}

TEST(Executor, KernelErrorsNameTheNode) {
  RegisterRuntimeTestOps();
  auto g = std::make_unique<ir::Graph>("fails");
  ir::Builder b(g.get());
  ir::Value* x = b.Input("x", DType::kF32, Shape{3});
  ir::Value* y = b.Emit1("rt_test_fails", {x}, {}, "y");
  g->outputs() = {ir::ops::Scale(b, y, 1.0, "z")};
  auto p = Compile(std::move(g));
  CpuBackend be;
  for (ExecMemoryMode mode : {ExecMemoryMode::kArena, ExecMemoryMode::kDynamic}) {
    auto e = Executor::Create(*p, be, {mode});
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    Status s = (*e)->Run();
    EXPECT_EQ(s.code(), StatusCode::kUnavailable);
    EXPECT_EQ(s.message(), "node #0 'rt_test_fails' -> %y: peer went away");
  }
  EXPECT_EQ(be.stats().live_total(), 0) << "executors free what they allocated";
}

TEST(Executor, MemoryModeComesFromTheSetting) {
  auto p = Compile(PhaseGraph());
  CpuBackend be;
  setenv("ZT_EXEC_MEMORY", "dynamic", 1);
  auto d = Executor::Create(*p, be);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)->memory_mode(), ExecMemoryMode::kDynamic);
  setenv("ZT_EXEC_MEMORY", "heap", 1);
  auto bad = Executor::Create(*p, be);
  unsetenv("ZT_EXEC_MEMORY");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("ZT_EXEC_MEMORY='heap'"), std::string::npos) << bad.status().ToString();
  auto a = Executor::Create(*p, be);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->memory_mode(), ExecMemoryMode::kArena);
}

// Params keep their contents across steps while inputs change; an empty program runs too.
TEST(Executor, PersistentValuesKeepTheirContentsAcrossSteps) {
  auto g = std::make_unique<ir::Graph>("persist");
  ir::Builder b(g.get());
  ir::Value* w = b.Param("w", DType::kF32, Shape{3});
  ir::Value* x = b.Input("x", DType::kF32, Shape{3});
  g->outputs() = {ir::ops::Mul(b, w, x, "y")};
  for (ExecMemoryMode mode : {ExecMemoryMode::kArena, ExecMemoryMode::kDynamic}) {
    GraphRunner r(std::make_unique<ir::Graph>("empty"), mode);
    r.Run();
  }
  GraphRunner r(std::move(g), ExecMemoryMode::kDynamic);
  r.Set("w", {1, 2, 3});
  r.Set("x", {1, 1, 1});
  r.Run();
  EXPECT_EQ(r.Get("y"), (std::vector<float>{1, 2, 3}));
  r.Set("x", {2, 2, 2});
  r.Run();
  EXPECT_EQ(r.Get("y"), (std::vector<float>{2, 4, 6}));
  EXPECT_EQ(r.Get("w"), (std::vector<float>{1, 2, 3}));
}

// a = 2x on compute; b = 3a on the communication stream (a's last use); c = 4x on compute. The
// plan may put c where a was: then c must wait for b, whose stream may still be reading a.
TEST(Executor, ReusedBytesWaitForTheLastReaderOnAnotherStream) {
  auto g = std::make_unique<ir::Graph>("streams");
  ir::Builder b(g.get());
  ir::Value* x = b.Input("x", DType::kF32, Shape{64});
  ir::Value* a = ir::ops::Scale(b, x, 2.0, "a");
  ir::Value* bb = ir::ops::Scale(b, a, 3.0, "b");
  ir::Value* c = ir::ops::Scale(b, x, 4.0, "c");
  bb->producer->stream = static_cast<int>(StreamKind::kComm);
  g->outputs() = {bb, c};
  GraphRunner r(std::move(g));
  const ir::Value* va = r.value("a");
  const ir::Value* vc = r.value("c");
  ASSERT_TRUE(va->offset.has_value() && vc->offset.has_value());
  if (va->category == vc->category && *va->offset == *vc->offset) {
    EXPECT_EQ(r.executor().stats().memory_reuse_waits, 1);
  } else {
    GTEST_SKIP() << "the plan did not reuse a's bytes for c";
  }
  r.Set("x", std::vector<float>(64, 1.0f));
  r.Run();
  EXPECT_EQ(r.Get("b")[0], 6.0f);
  EXPECT_EQ(r.Get("c")[63], 4.0f);
}

// An event that counts the streams made to wait for it.
class CountingEvent final : public Event {
 public:
  void Record(Stream&) override {}
  void StreamWait(Stream&) override { ++plain_waits; }
  void StreamWaitExternal(Stream& s) override { waits.push_back(&s); }
  void Synchronize() override {}
  std::vector<Stream*> waits;
  int plain_waits = 0;
};

TEST(Executor, PhaseFenceMakesEachStreamWaitOnceBeforeItsFirstNodeOfThePhase) {
  // Optimizer phase: c = 4x and d = 5x on compute, e = 6x on the communication stream.
  auto g = PhaseGraph();
  {
    ir::Builder b(g.get());
    b.set_phase(ir::Phase::kOptimizer);
    ir::Value* x = g->FindValue("x");
    ir::Value* d = ir::ops::Scale(b, x, 5.0, "d");
    ir::Value* e = ir::ops::Scale(b, x, 6.0, "e");
    e->producer->stream = static_cast<int>(StreamKind::kComm);
    g->outputs().push_back(d);
    g->outputs().push_back(e);
  }
  GraphRunner r(std::move(g));
  CountingEvent fence;
  r.executor().SetPhaseFence(ir::Phase::kOptimizer, &fence);
  r.Set("x", {1, 2, 3, 4, 5});
  r.Run({true, true, false});
  EXPECT_TRUE(fence.waits.empty()) << "no optimizer node ran";
  r.Run();
  Backend& be = r.executor().backend();
  ASSERT_EQ(fence.waits.size(), 2u) << "one wait per stream that runs an optimizer node";
  EXPECT_EQ(fence.waits[0], &be.stream(StreamKind::kCompute));
  EXPECT_EQ(fence.waits[1], &be.stream(StreamKind::kComm));
  EXPECT_EQ(fence.plain_waits, 0) << "fences wait as external events (CUDA-graph replays honour them)";
  r.Run();
  EXPECT_EQ(fence.waits.size(), 4u) << "every Run waits again";
  r.executor().SetPhaseFence(ir::Phase::kOptimizer, nullptr);
  r.Run();
  EXPECT_EQ(fence.waits.size(), 4u) << "a removed fence is not waited for";
  EXPECT_EQ(r.Get("e")[4], 30.0f);
}

TEST(Executor, ReadAsyncCopiesARangeOfAPersistentValue) {
  auto g = std::make_unique<ir::Graph>("persist");
  ir::Builder b(g.get());
  ir::Value* w = b.Param("w", DType::kF32, Shape{6});
  ir::Value* x = b.Input("x", DType::kF32, Shape{6});
  g->outputs() = {ir::ops::Mul(b, w, x, "y")};
  GraphRunner r(std::move(g));
  r.Set("w", {1, 2, 3, 4, 5, 6});
  r.Set("x", {1, 1, 1, 1, 1, 1});
  r.Run();
  Executor& ex = r.executor();
  Stream& copy = ex.backend().stream(StreamKind::kCopy);
  std::vector<float> out(3, 0.0f);
  ASSERT_TRUE(ex.ReadAsync(r.value("w"), 2 * 4, out.data(), 3 * 4, copy).ok());
  copy.Synchronize();
  EXPECT_EQ(out, (std::vector<float>{3, 4, 5}));
  Status s = ex.ReadAsync(r.value("w"), 4 * 4, out.data(), 3 * 4, copy);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("bytes [16, 28) of %w, which has 24"), std::string::npos) << s.ToString();
  s = ex.ReadAsync(r.value("y"), 0, out.data(), 4, copy);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("not persistent"), std::string::npos) << s.ToString();
}

TEST(Program, CompileSummarizesPlanAndFlops) {
  auto g = std::make_unique<ir::Graph>("p");
  ir::Builder b(g.get());
  ir::Value* x = b.Input("x", DType::kF32, Shape{4, 8});
  ir::Value* y = ir::ops::Scale(b, x, 2.0, "y");        // 32 flops
  ir::ops::Scale(b, x, 5.0, "dead");                    // removed by DCE
  g->outputs() = {ir::ops::Add(b, y, x, "z")};          // 32 flops
  std::vector<std::pair<std::string, std::string>> dumps;
  CompileOptions o;
  o.dump_after = {"dce"};
  o.dump_sink = &dumps;
  auto p = Program::Compile(std::move(g), o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->graph().nodes().size(), 2u);
  EXPECT_EQ((*p)->flops_per_step(), 64.0);
  EXPECT_EQ((*p)->plan().arena_total, 3 * 256);
  ASSERT_EQ(dumps.size(), 1u);
  EXPECT_EQ(dumps[0].first, "dce");

  auto bad = std::make_unique<ir::Graph>("bad");
  ir::Builder bb(bad.get());
  ir::Value* v = ir::ops::Scale(bb, bb.Input("v", DType::kF32, Shape{2}), 1.0, "s");
  v->shape = Shape{3};
  auto pb = Program::Compile(std::move(bad));
  ASSERT_FALSE(pb.ok());
  EXPECT_NE(pb.status().message().find("graph before the first pass: node #0 'scale'"), std::string::npos)
      << pb.status().ToString();
}

}  // namespace
}  // namespace zt
