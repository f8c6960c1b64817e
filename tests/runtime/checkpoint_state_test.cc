// Engine checkpoint state: taking each rank's snapshot after step 10 and restoring it into fresh
// engines continues training bit-identically to never stopping (losses and parameter bytes), for
// ZeRO stages 0-3, 1, 2 and 4 ranks (threads), fp32 / bf16 / fp16; and a snapshot of 4 ranks
// restores into 2 or 3 ranks (resharded by unit layout) and continues with the 4-rank run's losses
// within the reduction tolerance of tests/runtime/zero_equivalence_test.cc.
#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <thread>

#include "backend/cpu/cpu_backend.h"
#include "comm/thread_communicator.h"
#include "data/sampler.h"
#include "data/token_file.h"
#include "models/gpt2.h"
#include "models/init.h"
#include "runtime/engine.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

constexpr int64_t kSeq = 8, kVocab = 37;

std::string DataFile() {
  static std::string path = [] {
    std::string p = ::testing::TempDir() + "zt_ckpt_state_tokens." + std::to_string(getpid()) + ".bin";
    auto t = testing::RandomInts(40000, 91, 0, kVocab);
    std::vector<int32_t> tokens(t.begin(), t.end());
    ZT_CHECK_OK(data::WriteTokenFile(p, tokens, 2, kVocab));
    return p;
  }();
  return path;
}

struct RunSetup {
  int stage = 0;
  config::Precision precision = config::Precision::kF32;
  int64_t micro = 2;
};

DType ParamDType(config::Precision p) {
  return p == config::Precision::kBF16 ? DType::kBF16 : p == config::Precision::kF16 ? DType::kF16 : DType::kF32;
}

// One rank: an engine, its sampler, and what it did.
struct Rank {
  CpuBackend backend;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<data::TokenFile> file;
  std::optional<data::BatchSampler> sampler;
  std::vector<double> losses;

  Rank(const RunSetup& s, comm::Communicator* comm) {
    omp_set_num_threads(1);
    models::Gpt2Config c;
    c.vocab_size = kVocab;
    c.n_positions = kSeq;
    c.n_embd = 12;
    c.n_layer = 2;
    c.n_head = 2;
    auto g = std::make_unique<ir::Graph>("gpt2");
    ir::Builder b(g.get());
    auto m = models::BuildGpt2(b, c, {.batch = s.micro, .seq = kSeq, .dtype = ParamDType(s.precision)});
    ZT_CHECK(m.ok());
    EngineOptions o;
    o.precision = s.precision;
    o.fp16.initial_scale_power = 12;
    o.fp16.loss_scale_window = 4;  // the scale changes during the run: its state must resume too
    o.optimizer.lr = 3e-3;
    o.optimizer.weight_decay = 0.1;
    o.gradient_clipping = 1.0;
    o.scheduler.type = "WarmupCosineLR";
    o.scheduler.warmup_num_steps = 5;
    o.scheduler.warmup_type = "linear";
    o.scheduler.total_num_steps = 20;
    o.zero_stage = s.stage;
    o.comm = comm;
    o.bucket_elements = 300;
    auto e = Engine::Create(std::move(g), {m->tokens, m->targets, m->loss}, o, backend);
    ZT_CHECK(e.ok()) << e.status().ToString();
    engine = std::move(*e);
    auto f = data::TokenFile::Open(DataFile(), kVocab);
    ZT_CHECK(f.ok());
    file = std::move(*f);
    int world = comm ? comm->world_size() : 1, rank = comm ? comm->rank() : 0;
    auto smp = data::BatchSampler::Create(*file, {kSeq, s.micro, 1, world, rank, 5});
    ZT_CHECK(smp.ok());
    sampler = *smp;
  }

  void Init() {
    ZT_CHECK_OK(engine->InitParams([](const std::string& name, const Tensor& t) {
      models::InitParam(name, t, {.std = 0.2, .n_layer = 2, .seed = 11});
    }));
  }

  void Train(int steps) {
    for (int i = 0; i < steps; ++i) {
      auto st = engine->TrainStep([&](int m, std::vector<int32_t>& t, std::vector<int32_t>& y) { sampler->Fill(m, t, y); });
      ZT_CHECK(st.ok()) << st.status().ToString();
      sampler->Advance();
      losses.push_back(st->loss);
    }
  }

  std::vector<float> Params() {
    std::vector<float> all;
    ZT_CHECK_OK(engine->ReadParams([&](const std::string&, const Tensor& t) {
      all.insert(all.end(), t.as<float>(), t.as<float>() + t.numel());
    }));
    return all;
  }
};

// Runs `fn(rank)` on every rank of a thread group of `world`, each with its own communicator.
template <typename F>
void OnRanks(int world, F fn) {
  auto comms = comm::CreateThreadGroup(world);
  std::vector<std::thread> ts;
  for (int r = 0; r < world; ++r) ts.emplace_back([&, r] { fn(r, comms[r].get()); });
  for (auto& t : ts) t.join();
}

struct Saved {
  std::vector<ckpt::RankSnapshot> snaps;
  passes::ZeroLayout layout;
  EngineState state;
  data::SamplerState sampler;
};

ckpt::SectionReader ReaderOf(const Saved& saved) {
  return [&saved](int rank, const std::string& section, int64_t first, int64_t count, float* out) -> Status {
    const ckpt::SnapshotSection* s = saved.snaps[rank].Find(section);
    if (s == nullptr) return DataLoss("no section " + section);
    if (first + count > s->numel) return DataLoss("range beyond section " + section);
    std::memcpy(out, saved.snaps[rank].bytes.data() + s->offset + first * 4, static_cast<size_t>(count) * 4);
    return OkStatus();
  };
}

struct Outcome {
  std::vector<double> losses;  // rank 0's
  std::vector<float> params;
};

// 20 straight steps; or 10 steps, snapshot, fresh engines restored, 10 more.
Outcome Straight(const RunSetup& s, int world) {
  Outcome o;
  OnRanks(world, [&](int r, comm::Communicator* c) {
    Rank rank(s, world > 1 ? c : nullptr);
    rank.Init();
    rank.Train(20);
    auto p = rank.Params();
    if (r == 0) {
      o.losses = rank.losses;
      o.params = p;
    }
  });
  return o;
}

Saved FirstHalf(const RunSetup& s, int world, std::vector<double>* losses) {
  Saved saved;
  saved.snaps.resize(static_cast<size_t>(world));
  OnRanks(world, [&](int r, comm::Communicator* c) {
    Rank rank(s, world > 1 ? c : nullptr);
    rank.Init();
    rank.Train(10);
    ZT_CHECK_OK(rank.engine->TakeSnapshot(&saved.snaps[r]));
    if (r == 0) {
      *losses = rank.losses;
      saved.layout = rank.engine->checkpoint_layout();
      saved.state = rank.engine->state();
      saved.sampler = rank.sampler->State();
    }
  });
  return saved;
}

Outcome SecondHalf(const RunSetup& s, int world, const Saved& saved, int steps = 10) {
  Outcome o;
  OnRanks(world, [&](int r, comm::Communicator* c) {
    Rank rank(s, world > 1 ? c : nullptr);
    ZT_CHECK_OK(rank.engine->RestoreState(saved.layout, ReaderOf(saved)));
    rank.engine->Restore(saved.state);
    ZT_CHECK_OK(rank.sampler->Restore(saved.sampler));
    rank.Train(steps);
    auto p = rank.Params();
    if (r == 0) {
      o.losses = rank.losses;
      o.params = p;
    }
  });
  return o;
}

class ResumeTest : public ::testing::TestWithParam<std::tuple<int, int, config::Precision>> {};

TEST_P(ResumeTest, TenPlusTenIsBitIdenticalToTwenty) {
  auto [stage, world, prec] = GetParam();
  RunSetup s{stage, prec};
  Outcome straight = Straight(s, world);
  std::vector<double> first;
  Saved saved = FirstHalf(s, world, &first);
  EXPECT_EQ(saved.state.global_step, 10);
  Outcome resumed = SecondHalf(s, world, saved);
  first.insert(first.end(), resumed.losses.begin(), resumed.losses.end());
  ASSERT_EQ(first.size(), straight.losses.size());
  EXPECT_EQ(first, straight.losses) << "losses after the resume differ";
  EXPECT_TRUE(resumed.params == straight.params) << "parameter bytes after the resume differ";
}

INSTANTIATE_TEST_SUITE_P(
    StagesWorldsPrecisions, ResumeTest,
    ::testing::Combine(::testing::Values(0, 1, 2, 3), ::testing::Values(1, 2, 4),
                       ::testing::Values(config::Precision::kF32, config::Precision::kBF16, config::Precision::kF16)),
    [](const ::testing::TestParamInfo<std::tuple<int, int, config::Precision>>& i) {
      return "stage" + std::to_string(std::get<0>(i.param)) + "_N" + std::to_string(std::get<1>(i.param)) + "_" +
             config::PrecisionName(std::get<2>(i.param));
    });

// 4 ranks x micro-batch 3 (global batch 12) for 10 steps; then 2 ranks x 6 and 3 ranks x 4 (same
// global batch), resharded from the 4-rank snapshot, continue and match the 4 ranks' own next 10
// losses. Tolerance as in zero_equivalence_test.cc: f32 sums in another order (and for 3 ranks a
// division by 3) — 1e-5 relative.
TEST(Reshard, FourRanksContinueOnTwoAndThree) {
  RunSetup four{3, config::Precision::kF32, 3};
  std::vector<double> first;
  Saved saved = FirstHalf(four, 4, &first);
  Outcome ref = SecondHalf(four, 4, saved);
  for (auto [world, stage, micro] : {std::tuple{2, 3, 6}, std::tuple{3, 1, 4}, std::tuple{2, 0, 6}}) {
    SCOPED_TRACE("M = " + std::to_string(world) + ", stage " + std::to_string(stage));
    RunSetup s{stage, config::Precision::kF32, micro};
    Outcome got = SecondHalf(s, world, saved);
    ASSERT_EQ(got.losses.size(), ref.losses.size());
    for (size_t i = 0; i < ref.losses.size(); ++i) EXPECT_NEAR(got.losses[i], ref.losses[i], 1e-5 * ref.losses[i]) << i;
  }
}

}  // namespace
}  // namespace zt
