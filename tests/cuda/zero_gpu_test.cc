// ZeRO on GPUs through NCCL (gpu label; skips with fewer GPUs than ranks): N in {2, 4} processes,
// one GPU each, train a tiny GPT-2 for 10 steps with ZeRO stages 0-3 (Engine on a CudaBackend,
// collectives through the CUDA collective kernels and an NcclCommunicator on the backend's
// communication stream); one process on one GPU trains on the same global batch (N micro-batches
// accumulated). The ranks' losses and gradient norms must match the single-GPU run within 1e-4
// relative at every step, be identical on every rank, and the final parameters (read back through
// Engine::ReadParams, whose ZeRO gathers stage host buffers through NCCL) must be identical on
// every rank and within 1% of how far training moved them from the single-GPU run's (the CPU test
// tests/runtime/zero_equivalence_test.cc explains the rounding; NCCL adds its own summation
// order). The batches: tokens from a seeded generator, targets a fixed function of the token,
// so the loss falls.
#include <gtest/gtest.h>

#include "multi_gpu.h"

#ifdef ZT_WITH_CUDA

#include <cmath>
#include <fstream>
#include <random>

#include "backend/cuda/cuda_backend.h"
#include "comm/cuda/nccl_communicator.h"
#include "comm/file_store.h"
#include "models/gpt2.h"
#include "models/init.h"
#include "runtime/engine.h"

namespace zt {
namespace {

using std::chrono::milliseconds;
using testing::RankInfo;

constexpr int64_t kSteps = 10, kMicro = 2, kSeq = 8, kVocab = 37;
constexpr int kStages = 4;

struct RunResult {
  std::vector<double> losses;
  std::vector<double> grad_norms;
  std::vector<float> params;  // every parameter, in model order
};

// Micro-batch `micro` of the global batch of step `step`.
void Batch(int64_t step, int64_t micro, std::vector<int32_t>& tokens, std::vector<int32_t>& targets) {
  std::mt19937 g(static_cast<uint32_t>(step * 1000 + micro + 1));
  tokens.resize(kMicro * kSeq);
  targets.resize(kMicro * kSeq);
  for (size_t i = 0; i < tokens.size(); ++i) {
    tokens[i] = static_cast<int32_t>(g() % kVocab);
    targets[i] = (tokens[i] * 7 + 3) % kVocab;
  }
}

// One rank's run (comm == nullptr: the single process, accumulating `accum` micro-batches).
RunResult Train(Backend& backend, int stage, int64_t accum, comm::Communicator* comm, int64_t steps = kSteps) {
  models::Gpt2Config c;
  c.vocab_size = kVocab;
  c.n_positions = kSeq;
  c.n_embd = 12;
  c.n_layer = 2;
  c.n_head = 2;
  auto g = std::make_unique<ir::Graph>("gpt2");
  ir::Builder b(g.get());
  auto m = models::BuildGpt2(b, c, {.batch = kMicro, .seq = kSeq});
  ZT_CHECK(m.ok()) << m.status().ToString();
  EngineOptions o;
  o.grad_accum = accum;
  o.optimizer.lr = 2e-3;
  o.optimizer.weight_decay = 0.1;
  o.zero_stage = stage;
  o.comm = comm;
  o.bucket_elements = 300;  // several units per block: unit boundaries and padding
  auto e = Engine::Create(std::move(g), {m->tokens, m->targets, m->loss}, o, backend);
  ZT_CHECK(e.ok()) << e.status().ToString();
  Engine& engine = **e;
  ZT_CHECK_OK(engine.InitParams([](const std::string& name, const Tensor& t) {
    models::InitParam(name, t, {.std = 0.2, .n_layer = 2, .seed = 11});
  }));
  const int rank = comm ? comm->rank() : 0;
  RunResult r;
  for (int64_t s = 0; s < steps; ++s) {
    auto st = engine.TrainStep([&](int micro, std::vector<int32_t>& t, std::vector<int32_t>& y) {
      Batch(s, comm ? rank : micro, t, y);
    });
    ZT_CHECK(st.ok()) << st.status().ToString();
    r.losses.push_back(st->loss);
    r.grad_norms.push_back(st->grad_norm);
  }
  ZT_CHECK_OK(engine.ReadParams([&](const std::string&, const Tensor& t) {
    r.params.insert(r.params.end(), t.as<float>(), t.as<float>() + t.numel());
  }));
  return r;
}

std::string ResultPath(const std::string& dir, int rank, int stage) {
  return dir + "/r" + std::to_string(rank) + "_s" + std::to_string(stage);
}

void Save(const std::string& path, const RunResult& r) {
  std::ofstream f(path, std::ios::binary);
  auto put = [&](const void* p, size_t n) { f.write(static_cast<const char*>(p), static_cast<std::streamsize>(n)); };
  uint64_t n = r.losses.size(), np = r.params.size();
  put(&n, sizeof(n));
  put(r.losses.data(), n * sizeof(double));
  put(r.grad_norms.data(), n * sizeof(double));
  put(&np, sizeof(np));
  put(r.params.data(), np * sizeof(float));
}

bool Load(const std::string& path, RunResult* r) {
  std::ifstream f(path, std::ios::binary);
  auto get = [&](void* p, size_t n) { return static_cast<bool>(f.read(static_cast<char*>(p), static_cast<std::streamsize>(n))); };
  uint64_t n = 0, np = 0;
  if (!get(&n, sizeof(n)) || n > 1000) return false;
  r->losses.resize(n);
  r->grad_norms.resize(n);
  if (!get(r->losses.data(), n * sizeof(double)) || !get(r->grad_norms.data(), n * sizeof(double))) return false;
  if (!get(&np, sizeof(np)) || np > (1u << 24)) return false;
  r->params.resize(np);
  return get(r->params.data(), np * sizeof(float));
}

void RankPart(const RankInfo& info) {
  auto backend = CudaBackend::Create(info.rank);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  comm::FileStore store(info.dir + "/store", milliseconds(60000));
  auto c = comm::CreateNcclCommunicator(store, info.rank, info.world, milliseconds(120000),
                                        CudaStreamOf((*backend)->stream(StreamKind::kComm)));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  for (int stage = 0; stage < kStages; ++stage) {
    RunResult r = Train(**backend, stage, 1, c->get());
    Save(ResultPath(info.dir, info.rank, stage), r);
  }
}

class ZeroOnGpus : public ::testing::TestWithParam<int> {};

TEST_P(ZeroOnGpus, StagesMatchOneGpuWithTheSameGlobalBatch) {
  ZT_RUN_AS_RANK(RankPart);
  const int world = GetParam();
  ZT_SKIP_WITH_FEWER_GPUS(world);
  testing::TempDir dir("zt_gpu_zero_");
  testing::ExpectRanksSucceeded(testing::SpawnRanks(world, dir.path(), milliseconds(480000)));
  if (HasFailure()) return;

  auto backend = CudaBackend::Create(0);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  RunResult one = Train(**backend, 0, world, nullptr);   // the reference: N micro-batches accumulated
  RunResult init = Train(**backend, 0, 1, nullptr, 0);   // the parameters before training
  ASSERT_EQ(one.losses.size(), static_cast<size_t>(kSteps));
  EXPECT_LT(one.losses.back(), one.losses.front());
  for (int stage = 0; stage < kStages; ++stage) {
    std::vector<RunResult> ranks(world);
    for (int r = 0; r < world; ++r) {
      ASSERT_TRUE(Load(ResultPath(dir.path(), r, stage), &ranks[r])) << "rank " << r << " stage " << stage;
    }
    for (int r = 0; r < world; ++r) {
      SCOPED_TRACE("stage " + std::to_string(stage) + ", rank " + std::to_string(r));
      ASSERT_EQ(ranks[r].losses.size(), one.losses.size());
      for (size_t s = 0; s < one.losses.size(); ++s) {
        EXPECT_NEAR(ranks[r].losses[s], one.losses[s], 1e-4 * std::fabs(one.losses[s])) << "step " << s;
        EXPECT_NEAR(ranks[r].grad_norms[s], one.grad_norms[s], 1e-4 * one.grad_norms[s]) << "step " << s;
      }
      // Every rank reports the same global loss and ends with the same parameters, bit for bit.
      EXPECT_EQ(ranks[r].losses, ranks[0].losses);
      EXPECT_TRUE(ranks[r].params == ranks[0].params);
    }
    SCOPED_TRACE("stage " + std::to_string(stage));
    ASSERT_EQ(ranks[0].params.size(), one.params.size());
    double diff2 = 0, move2 = 0, worst = 0;
    for (size_t i = 0; i < one.params.size(); ++i) {
      double d = static_cast<double>(ranks[0].params[i]) - one.params[i];
      worst = std::max(worst, std::fabs(d));
      diff2 += d * d;
      move2 += std::pow(static_cast<double>(one.params[i]) - init.params[i], 2);
    }
    EXPECT_GT(move2, 0.0);
    EXPECT_LT(std::sqrt(diff2), 0.01 * std::sqrt(move2)) << "worst element difference " << worst;
  }
}

INSTANTIATE_TEST_SUITE_P(Worlds, ZeroOnGpus, ::testing::Values(2, 4),
                         [](const ::testing::TestParamInfo<int>& i) { return "N" + std::to_string(i.param); });

}  // namespace
}  // namespace zt

#else  // !ZT_WITH_CUDA

TEST(ZeroOnGpus, NeedsCuda) { GTEST_SKIP() << "built without CUDA"; }

#endif
