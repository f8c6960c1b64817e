// FuseAdamW (passes/fuse_adamw.h) on the real step graphs of a tiny GPT-2 — ZeRO stages 0-3 on
// one and two ranks, gradient accumulation 1 and 2, f32 parameters and bf16 ones with f32 master
// weights, two weight-decay groups — and on hand-built graphs. Checked: the numbers of adamw and
// adamw_multi nodes are what the grouping rules give (computed here from the parameters or the
// ZeRO layout, not copied from a run); every parameter (or ZeRO unit) is updated exactly once
// with the same operands as before the pass; the graph verifies; at ZeRO-1/2 each unit's update
// is still followed at once by the node that reads it (cast / all-gather / unpack); resets of the
// accumulators stay after the updates. Hand-built: a reader, an in-place writer or an ordering
// edge between two updates keeps them in separate groups; unrelated nodes do not; groups with
// different attributes interleave; the fused node takes the last member's place and names; uses
// and ordering edges move to it; a graph with nothing to fuse is left unchanged (same text).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "ir/builder.h"
#include "ir/ops/adamw.h"
#include "ir/ops/elementwise.h"
#include "ir/ops/optim_utils.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "models/gpt2.h"
#include "passes/fuse_adamw.h"
#include "passes/fusion.h"
#include "runtime/engine.h"
#include "runtime/program.h"

namespace zt {
namespace {

using ir::Node;
using ir::Value;

models::Gpt2Config Tiny() {
  models::Gpt2Config c;
  c.vocab_size = 37;
  c.n_positions = 8;
  c.n_embd = 12;
  c.n_layer = 2;
  c.n_head = 2;
  return c;
}

constexpr double kDecay = 0.1;

EngineOptions Options(int stage, int64_t accum, bool master) {
  EngineOptions o;
  o.zero_stage = stage;
  o.grad_accum = accum;
  o.precision = master ? config::Precision::kBF16 : config::Precision::kF32;
  o.optimizer.weight_decay = kDecay;
  o.no_decay_for_vectors = true;  // two weight-decay groups
  o.bucket_elements = 400;        // several ZeRO units per block
  return o;
}

struct Compiled {
  std::unique_ptr<Program> program;
  std::shared_ptr<passes::ZeroPass> zero;
};

// The step graph of the tiny GPT-2, sharded over `world` ranks, with or without FuseAdamW; an
// error when a pass leaves a graph that does not verify.
StatusOr<Compiled> Compile(const EngineOptions& o, int64_t world, bool fuse) {
  auto g = std::make_unique<ir::Graph>("gpt2");
  ir::Builder b(g.get());
  auto m = models::BuildGpt2(b, Tiny(), {.batch = 2, .seq = 8, .dtype = o.precision == config::Precision::kF32 ? DType::kF32 : DType::kBF16});
  ZT_CHECK(m.ok()) << m.status().ToString();
  ZT_CHECK_OK(Engine::BuildStepGraph(*g, {m->tokens, m->targets, m->loss}, o));
  Compiled c;
  CompileOptions co;
  co.passes = Engine::ShardingPasses(o, world, &c.zero);
  if (fuse) co.passes.push_back(std::make_shared<passes::FuseAdamW>());
  ZT_ASSIGN_OR_RETURN(c.program, Program::Compile(std::move(g), co));  // verifies after every pass
  return c;
}

// One update as the pass must keep it: the names of its parameter (or shard), gradient, moments,
// master and the node's weight decay.
struct Update {
  std::string param, grad, m, v, w;
  double weight_decay;
  bool operator<(const Update& o) const { return param < o.param; }
  bool operator==(const Update& o) const {
    return param == o.param && grad == o.grad && m == o.m && v == o.v && w == o.w && weight_decay == o.weight_decay;
  }
};

std::vector<Update> UpdatesOf(const ir::Graph& g) {
  std::vector<Update> out;
  for (const auto& n : g.nodes()) {
    double wd = n->op->name == "adamw" || n->op->name == "adamw_multi" ? n->attrs.GetFloat("weight_decay") : 0;
    if (n->op->name == "adamw") {
      const auto& in = n->inputs;
      out.push_back({in[0]->name, in[1]->name, in[2]->name, in[3]->name, in.size() == 7 ? in[6]->name : "", wd});
    } else if (n->op->name == "adamw_multi") {
      const int64_t k = n->attrs.GetInt("tensors");
      const auto l = ir::AdamWMultiLayout::Of(k, n->inputs.size());
      for (int64_t i = 0; i < k; ++i) {
        const auto& in = n->inputs;
        out.push_back({in[l.param(i)]->name, in[l.grad(i)]->name, in[l.exp_avg(i)]->name, in[l.exp_avg_sq(i)]->name,
                       l.masters ? in[l.master(i)]->name : "", wd});
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

int Count(const ir::Graph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes()) n += node->op->name == op;
  return n;
}

// What the grouping rules give when the updates of each weight decay could all be grouped: one
// adamw_multi per weight decay with two or more updates, a plain adamw for one alone.
std::pair<int, int> ExpectedGroups(const std::vector<double>& decay_per_update) {
  std::map<double, int> per;
  for (double d : decay_per_update) per[d]++;
  int multi = 0, plain = 0;
  for (auto& [d, n] : per) (n >= 2 ? multi : plain)++;
  return {plain, multi};
}

TEST(FuseAdamW, IsOneOfTheFusionPasses) {
  bool found = false;
  for (auto& p : passes::FusionPasses()) found |= p->name() == "fuse_adamw";
  EXPECT_TRUE(found);
}

TEST(FuseAdamW, StepGraphsAtEveryZeroStage) {
  for (int64_t world : {1, 2}) {
    for (int stage : {0, 1, 2, 3}) {
      for (int64_t accum : {1, 2}) {
        for (bool master : {false, true}) {
          SCOPED_TRACE("world " + std::to_string(world) + " stage " + std::to_string(stage) + " accum " +
                       std::to_string(accum) + (master ? " bf16+master" : " f32"));
          const EngineOptions o = Options(stage, accum, master);
          auto plain_or = Compile(o, world, false);
          auto fused_or = Compile(o, world, true);
          ASSERT_TRUE(plain_or.ok()) << plain_or.status().ToString();
          ASSERT_TRUE(fused_or.ok()) << fused_or.status().ToString();
          Compiled& plain = *plain_or;
          Compiled& fused = *fused_or;
          const ir::Graph& pg = plain.program->graph();
          const ir::Graph& fg = fused.program->graph();
          EXPECT_TRUE(ir::Verify(fg).ok());
          // The same updates, with the same operands, each exactly once.
          std::vector<Update> before = UpdatesOf(pg), after = UpdatesOf(fg);
          EXPECT_EQ(Count(pg, "adamw_multi"), 0);
          ASSERT_EQ(after.size(), before.size());
          EXPECT_TRUE(after == before);
          std::vector<double> decays;
          for (const Update& u : before) decays.push_back(u.weight_decay);
          const int adamw = Count(fg, "adamw"), multi = Count(fg, "adamw_multi");
          if ((stage == 1 || stage == 2) && world > 1) {
            // Every unit's update is read at once by its cast / all-gather: no group (the
            // all-gathers overlap the later updates). With one rank the ZeRO pass puts every
            // update first (nothing to overlap), so they group as at stages 0 and 3 (below).
            EXPECT_EQ(adamw, static_cast<int>(fused.zero->layout().units.size()));
            EXPECT_EQ(multi, 0);
            EXPECT_EQ(ir::PrintGraph(fg), ir::PrintGraph(pg));
            const auto& nodes = fg.nodes();
            for (size_t i = 0; i < nodes.size(); ++i) {
              if (nodes[i]->op->name != "adamw") continue;
              ASSERT_LT(i + 1, nodes.size());
              const Node& next = *nodes[i + 1];
              const std::set<std::string> readers = {"cast", "all_gather", "unpack_into"};
              EXPECT_TRUE(readers.count(next.op->name)) << next.op->name;
              EXPECT_EQ(next.inputs[0], nodes[i]->outputs[0]) << fg.Describe(&next);
            }
          } else {
            auto [want_plain, want_multi] = ExpectedGroups(decays);
            EXPECT_EQ(adamw, want_plain);
            EXPECT_EQ(multi, want_multi);
            if (stage == 0) {  // GPT-2 with no_decay_for_vectors: exactly two groups
              EXPECT_EQ(multi, 2);
              EXPECT_EQ(adamw, 0);
            }
            EXPECT_GE(multi, 2);
            std::set<double> multi_decays;
            for (const auto& n : fg.nodes())
              if (n->op->name == "adamw_multi") multi_decays.insert(n->attrs.GetFloat("weight_decay"));
            EXPECT_EQ(multi_decays, (std::set<double>{0.0, kDecay}));
          }
          // Accumulator resets (and nothing that reads an update) come after the last update.
          int last_update = -1, first_zero = static_cast<int>(fg.nodes().size());
          for (int i = 0; i < static_cast<int>(fg.nodes().size()); ++i) {
            const std::string& op = fg.nodes()[i]->op->name;
            if (op == "adamw" || op == "adamw_multi") last_update = i;
            if (op == "zero") first_zero = std::min(first_zero, i);
          }
          if (accum > 1) {
            EXPECT_LT(first_zero, static_cast<int>(fg.nodes().size()));
          }
          EXPECT_LT(last_update, first_zero);
          EXPECT_LE(fg.nodes().size(), pg.nodes().size());
        }
      }
    }
  }
}

// A hand-built optimizer: parameters p0..p{n-1} (f32 [2 + i]), their gradients, moments, the
// scalars and grad_sumsq; Update(i) emits adamw for parameter i.
struct Hand {
  ir::Graph g{"hand"};
  ir::Builder b{&g};
  Value* s;
  Value* ss;
  std::vector<Value*> p, gr, m, v;
  explicit Hand(int n) {
    s = b.Input("s", DType::kF32, Shape{ir::kAdamWScalars});
    ss = b.Input("ss", DType::kF32, Shape{});
    for (int i = 0; i < n; ++i) {
      std::string k = std::to_string(i);
      p.push_back(b.Param("p" + k, DType::kF32, Shape{2 + i}));
      gr.push_back(b.Input("g" + k, DType::kF32, Shape{2 + i}));
      m.push_back(b.State("m" + k, DType::kF32, Shape{2 + i}, MemCategory::kOptimizerState));
      v.push_back(b.State("v" + k, DType::kF32, Shape{2 + i}, MemCategory::kOptimizerState));
    }
    b.set_phase(ir::Phase::kOptimizer);
  }
  std::vector<Value*> Update(int i, double wd = 0.1) {
    return b.Emit("adamw", {p[i], gr[i], m[i], v[i], s, ss}, {{"weight_decay", wd}}, "p" + std::to_string(i) + ".update");
  }
  bool Run() {
    auto r = passes::FuseAdamW().Run(g);
    ZT_CHECK(r.ok());
    Status st = ir::Verify(g);
    EXPECT_TRUE(st.ok()) << st.ToString() << "\n" << ir::PrintGraph(g);
    return *r;
  }
  // Op names in schedule order, each adamw_multi with its tensors' parameters: "multi(p1,p2)".
  std::vector<std::string> Schedule() const {
    std::vector<std::string> out;
    for (const auto& n : g.nodes()) {
      std::string s = n->op->name;
      if (s == "adamw") s += "(" + n->inputs[0]->name + ")";
      if (s == "adamw_multi") {
        const int64_t k = n->attrs.GetInt("tensors");
        s = "multi(";
        for (int64_t i = 0; i < k; ++i) s += (i ? "," : "") + n->inputs[2 + i]->name;
        s += ")";
      }
      out.push_back(s);
    }
    return out;
  }
};

using Sched = std::vector<std::string>;

TEST(FuseAdamW, AReaderBetweenUpdatesSplitsTheGroup) {
  Hand h(3);
  Value* p0new = h.Update(0)[0];
  ir::ops::Scale(h.b, p0new, 2.0, "reads_p0");  // reads the first update's output
  h.Update(1);
  h.Update(2);
  EXPECT_TRUE(h.Run());
  EXPECT_EQ(h.Schedule(), (Sched{"adamw(p0)", "scale", "multi(p1,p2)"}));
  // The reader still reads the first update.
  EXPECT_EQ(h.g.nodes()[1]->inputs[0], h.g.nodes()[0]->outputs[0]);
}

TEST(FuseAdamW, AnInPlaceWriterOfAnOperandSplitsTheGroup) {
  Hand h(3);
  h.Update(0);
  ir::ops::Zero(h.b, h.gr[0], "reset_g0");  // overwrites what the first update read
  h.Update(1);
  h.Update(2);
  EXPECT_TRUE(h.Run());
  EXPECT_EQ(h.Schedule(), (Sched{"adamw(p0)", "zero", "multi(p1,p2)"}));
}

TEST(FuseAdamW, AnOrderingEdgeToAnUpdateSplitsTheGroup) {
  Hand h(3);
  h.Update(0);
  Node* u0 = h.b.last_node();
  ir::ops::Scale(h.b, h.gr[2], 2.0, "after_u0");
  h.b.last_node()->deps.push_back(u0);
  h.Update(1);
  h.Update(2);
  EXPECT_TRUE(h.Run());
  EXPECT_EQ(h.Schedule(), (Sched{"adamw(p0)", "scale", "multi(p1,p2)"}));
}

TEST(FuseAdamW, UnrelatedNodesBetweenUpdatesDoNotSplit) {
  Hand h(3);
  h.Update(0);
  ir::ops::Scale(h.b, h.gr[1], 2.0, "unrelated");  // reads a later update's gradient only
  h.Update(1);
  h.Update(2);
  EXPECT_TRUE(h.Run());
  EXPECT_EQ(h.Schedule(), (Sched{"scale", "multi(p0,p1,p2)"}));
}

TEST(FuseAdamW, InterleavedAttributeGroupsEachBecomeOneNode) {
  Hand h(5);
  h.Update(0, 0.1);
  h.Update(1, 0.0);
  h.Update(2, 0.1);
  h.Update(3, 0.0);
  h.Update(4, 0.1);
  EXPECT_TRUE(h.Run());
  // Each at the position of its last member: p3's (second to last), then p4's.
  EXPECT_EQ(h.Schedule(), (Sched{"multi(p1,p3)", "multi(p0,p2,p4)"}));
  EXPECT_EQ(h.g.nodes()[0]->attrs.GetFloat("weight_decay"), 0.0);
  EXPECT_EQ(h.g.nodes()[1]->attrs.GetFloat("weight_decay"), 0.1);
  EXPECT_EQ(h.g.nodes()[1]->attrs.GetInt("tensors"), 3);
}

TEST(FuseAdamW, DifferentDTypesMastersOrScalarsDoNotGroup) {
  Hand h(4);
  Value* s2 = h.b.Input("s2", DType::kF32, Shape{ir::kAdamWScalars});
  Value* pb = h.b.Param("pb", DType::kBF16, Shape{3});
  Value* gb = h.b.Input("gb", DType::kBF16, Shape{3});
  Value* mb = h.b.State("mb", DType::kF32, Shape{3}, MemCategory::kOptimizerState);
  Value* vb = h.b.State("vb", DType::kF32, Shape{3}, MemCategory::kOptimizerState);
  Value* wb = h.b.State("wb", DType::kF32, Shape{3}, MemCategory::kOptimizerState);
  h.Update(0);
  h.b.Emit("adamw", {pb, gb, mb, vb, h.s, h.ss, wb}, {{"weight_decay", 0.1}}, "pb.update");  // bf16, master
  h.b.Emit("adamw", {h.p[1], h.gr[1], h.m[1], h.v[1], s2, h.ss}, {{"weight_decay", 0.1}}, "p1.update");  // other scalars
  h.b.set_stream(1);
  h.Update(2);  // another stream
  h.b.set_stream(0);
  h.b.Emit("adamw", {h.p[3], h.gr[3], h.m[3], h.v[3], h.s, h.ss}, {{"weight_decay", 0.1}, {"beta2", 0.95}},
           "p3.update");  // another beta2
  std::string before = ir::PrintGraph(h.g);
  EXPECT_FALSE(h.Run());  // every group has one member: nothing changes
  EXPECT_EQ(ir::PrintGraph(h.g), before);
}

TEST(FuseAdamW, FusedNodeTakesTheNamesUsesAndEdges) {
  Hand h(3);
  std::vector<Value*> u0 = h.Update(0);
  std::vector<Value*> u1 = h.Update(1);
  Node* n1 = h.b.last_node();
  std::vector<Value*> u2 = h.Update(2);
  Value* later = ir::ops::Scale(h.b, u1[0], 3.0, "reads_p1");  // after the last update
  Node* reader = h.b.last_node();
  reader->deps.push_back(n1);
  h.g.outputs() = {u0[1]};  // a graph output that is an update's result (m0')
  const std::string text_before = ir::PrintGraph(h.g);
  EXPECT_TRUE(h.Run());
  ASSERT_EQ(h.Schedule(), (Sched{"multi(p0,p1,p2)", "scale"}));
  const Node& f = *h.g.nodes()[0];
  EXPECT_EQ(f.phase, ir::Phase::kOptimizer);
  // Outputs in role order, named as the members' outputs were.
  std::vector<std::string> names;
  for (const Value* o : f.outputs) names.push_back(o->name);
  EXPECT_EQ(names, (std::vector<std::string>{"p0.update", "p1.update", "p2.update", "p0.update.exp_avg", "p1.update.exp_avg",
                                             "p2.update.exp_avg", "p0.update.exp_avg_sq", "p1.update.exp_avg_sq",
                                             "p2.update.exp_avg_sq"}));
  EXPECT_EQ(h.g.FindValue("p1.update"), f.outputs[1]);
  EXPECT_EQ(reader->inputs[0], f.outputs[1]);
  EXPECT_EQ(reader->deps, (std::vector<Node*>{h.g.nodes()[0].get()}));
  EXPECT_EQ(h.g.outputs(), (std::vector<Value*>{f.outputs[3]}));
  (void)later;
  // The text form: the fused node replaces the three updates, the rest is unchanged.
  const std::string text = ir::PrintGraph(h.g);
  EXPECT_NE(text.find("= adamw_multi(%s, %ss, %p0, %p1, %p2, %m0, %m1, %m2, %v0, %v1, %v2, %g0, %g1, %g2) {beta1=0.9, "
                      "beta2=0.999, eps=1e-08, tensors=3, weight_decay=0.1} phase=optimizer"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("= adamw("), std::string::npos) << text;
  EXPECT_NE(text_before.find("= adamw("), std::string::npos);
}

TEST(FuseAdamW, MasterWeightsAreGroupedByRole) {
  Hand h(2);
  std::vector<Value*> w;
  for (int i = 0; i < 2; ++i)
    w.push_back(h.b.State("w" + std::to_string(i), DType::kF32, h.p[i]->shape, MemCategory::kOptimizerState));
  for (int i = 0; i < 2; ++i)
    h.b.Emit("adamw", {h.p[i], h.gr[i], h.m[i], h.v[i], h.s, h.ss, w[i]}, {}, "p" + std::to_string(i) + ".update");
  EXPECT_TRUE(h.Run());
  const Node& f = *h.g.nodes()[0];
  ASSERT_EQ(f.op->name, "adamw_multi");
  std::vector<std::string> in;
  for (const Value* v : f.inputs) in.push_back(v->name);
  EXPECT_EQ(in, (std::vector<std::string>{"s", "ss", "p0", "p1", "m0", "m1", "v0", "v1", "w0", "w1", "g0", "g1"}));
  ASSERT_EQ(f.outputs.size(), 8u);
  EXPECT_EQ(f.outputs[6]->name, "p0.update.master");
  EXPECT_EQ(ir::ResolveAlias(f.outputs[7]).root, w[1]);
}

}  // namespace
}  // namespace zt
