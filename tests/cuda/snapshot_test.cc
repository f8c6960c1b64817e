// Asynchronous checkpoint snapshots on the GPU (skipped without one): a snapshot started after
// step 3 and waited for only after step 4 has run holds exactly the state after step 3 (the same
// bytes as a synchronous snapshot of an identical run), because step 4's optimizer phase waits for
// the copies on the device — with CUDA-graph replay and eagerly, fp32 (masters are the parameters,
// updated in place) and bf16. The model is large enough (~300 MB of state) that the copies outlast
// step 4's forward and backward, so a missing fence shows. Snapshot buffers are page-locked.
#include <gtest/gtest.h>

#include <cstring>

#include "ckpt/snapshot.h"
#include "ir/builder.h"
#include "models/gpt2.h"
#include "models/init.h"
#include "runtime/engine.h"
#include "support/device_compare.h"
#include "support/graph_runner.h"
#ifdef ZT_WITH_CUDA
#include <cuda_runtime.h>

#include "backend/cuda/cuda_backend.h"
#endif

namespace zt {
namespace {

#ifdef ZT_WITH_CUDA

constexpr int64_t kSeq = 8, kVocab = 37, kMicro = 2;

struct SnapRun {
  std::unique_ptr<CudaBackend> backend;
  std::unique_ptr<Engine> engine;

  SnapRun(DType dtype, bool graphs) {
    auto b = CudaBackend::Create(0);
    ZT_CHECK(b.ok()) << b.status().ToString();
    backend = std::move(*b);
    models::Gpt2Config c;
    c.vocab_size = kVocab;
    c.n_positions = kSeq;
    c.n_embd = 512;
    c.n_layer = 8;
    c.n_head = 8;
    auto g = std::make_unique<ir::Graph>("gpt2");
    ir::Builder bld(g.get());
    auto m = models::BuildGpt2(bld, c, {.batch = kMicro, .seq = kSeq, .dtype = dtype});
    ZT_CHECK(m.ok()) << m.status().ToString();
    EngineOptions o;
    o.precision = dtype == DType::kBF16 ? config::Precision::kBF16 : config::Precision::kF32;
    o.optimizer.lr = 1e-3;
    ExecutorOptions eo;
    eo.memory = ExecMemoryMode::kArena;
    eo.cuda_graphs = graphs;
    auto e = Engine::Create(std::move(g), {m->tokens, m->targets, m->loss}, o, *backend, {}, eo);
    ZT_CHECK(e.ok()) << e.status().ToString();
    engine = std::move(*e);
    ZT_CHECK_OK(engine->InitParams([](const std::string& name, const Tensor& host) {
      models::InitParam(name, host, {.std = 0.02, .n_layer = 8, .seed = 5});
    }));
  }

  double Step(int64_t step) {
    auto st = engine->TrainStep([&](int, std::vector<int32_t>& tok, std::vector<int32_t>& tgt) {
      auto ids = testing::RandomInts(kMicro * kSeq + 1, 77 + step, 0, kVocab);
      tok.assign(ids.begin(), ids.end() - 1);
      tgt.assign(ids.begin() + 1, ids.end());
    });
    ZT_CHECK(st.ok()) << st.status().ToString();
    return st->loss;
  }
};

TEST(AsyncSnapshot, HoldsTheStateOfItsStepWhileTheNextStepRuns) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    for (bool graphs : {true, false}) {
      SCOPED_TRACE(std::string(DTypeName(dtype)) + (graphs ? " graphs" : " eager"));
      SnapRun sync_run(dtype, graphs), async_run(dtype, graphs);
      for (int64_t s = 0; s < 3; ++s) ASSERT_EQ(sync_run.Step(s), async_run.Step(s));
      ckpt::SnapshotPool pool(3, async_run.engine->snapshot_allocator());
      auto want = pool.Acquire();
      auto got = pool.Acquire();
      // A small section first, as the job's resume record is: the engine's sections then move
      // the (pinned) storage once, before any copy is queued.
      for (auto* s : {want.get(), got.get()}) std::memset(s->AddSection("meta/test", DType::kU8, 100), 7, 100);
      ASSERT_TRUE(sync_run.engine->TakeSnapshot(want.get()).ok());
      auto pending = async_run.engine->StartSnapshot(got.get());
      ASSERT_TRUE(pending.ok()) << pending.status().ToString();
      double async_loss = async_run.Step(3);  // queued behind the copies; its optimizer must wait
      ASSERT_TRUE((*pending)->Wait().ok());
      EXPECT_EQ(async_loss, sync_run.Step(3));
      ASSERT_EQ(got->bytes.size(), want->bytes.size());
      EXPECT_GT(want->bytes.size(), size_t{200} << 20) << "the state must be large enough to outlast a step";
      EXPECT_TRUE(got->bytes == want->bytes) << "the snapshot caught writes of the step after it";
      // The test can fail: the state after step 4 differs from the snapshot.
      auto after = pool.Acquire();
      ASSERT_TRUE(async_run.engine->TakeSnapshot(after.get()).ok());
      EXPECT_FALSE(after->bytes == want->bytes);
      pool.Release(std::move(after));
      pool.Release(std::move(want));
      // Page-locked and page-aligned, so the device copies into it are asynchronous and O_DIRECT
      // writes need no bounce buffer.
      EXPECT_EQ(reinterpret_cast<uintptr_t>(got->bytes.data()) % 4096, 0u);
      cudaPointerAttributes attr{};
      ASSERT_EQ(cudaPointerGetAttributes(&attr, got->bytes.data()), cudaSuccess);
      EXPECT_EQ(attr.type, cudaMemoryTypeHost);
      pool.Release(std::move(got));
    }
  }
}

#else

TEST(AsyncSnapshot, NotBuilt) { GTEST_SKIP() << "CUDA is not built"; }

#endif

}  // namespace
}  // namespace zt
