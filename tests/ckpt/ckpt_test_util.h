// Helpers for the checkpoint tests: a temporary directory, snapshots whose every byte is a known
// function of (step, rank, section, index), the manifest fields of a small ZeRO layout, running
// N ranks as threads, and checks that a committed checkpoint holds exactly the expected bytes.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ckpt/manifest.h"
#include "ckpt/reader.h"
#include "ckpt/snapshot.h"
#include "support/temp_dir.h"

namespace zt::ckpt::testing {

using zt::testing::ReadBytes;
using zt::testing::TempDir;
using zt::testing::WriteBytes;

// Unit sizes of the test layout (elements); `scale` multiplies them.
inline std::vector<int64_t> UnitSizes(int64_t scale = 1) { return {1000 * scale, 37 * scale, 5 * scale}; }
inline const char* kKinds[] = {"master", "exp_avg", "exp_avg_sq"};

inline float ExpectedValue(int64_t step, int rank, int section, int64_t i) {
  // Exact in f32 (below 2^24), different for every step, rank and section at the same index.
  return static_cast<float>((step * 100003 + rank * 10007 + section * 1009 + i) % 16777213);
}

// A layout of three f32 units over `world` ranks (stage 1).
inline passes::ZeroLayout TestLayout(int world, int64_t scale = 1) {
  passes::ZeroLayout l;
  l.stage = 1;
  l.world_size = world;
  auto sizes = UnitSizes(scale);
  for (size_t u = 0; u < sizes.size(); ++u) {
    passes::ZeroUnit unit;
    unit.name = "h." + std::to_string(u);
    unit.dtype = DType::kF32;
    unit.weight_decay = u == 0 ? 0.1 : 0.0;
    int64_t a = sizes[u] / 2, b = sizes[u] - a;
    unit.params.push_back({unit.name + ".weight", DType::kF32, Shape({a}), 0});
    unit.params.push_back({unit.name + ".bias", DType::kF32, Shape({b}), a});
    unit.numel = sizes[u];
    unit.shard = (unit.numel + world - 1) / world;
    unit.padded = unit.shard * world;
    l.units.push_back(unit);
  }
  return l;
}

// Fills `snap` with rank `rank`'s sections of the test layout for `step`.
inline void FillSnapshot(RankSnapshot& snap, int64_t step, int rank, int world, int64_t scale = 1) {
  snap.step = step;
  snap.rank = rank;
  snap.world_size = world;
  passes::ZeroLayout l = TestLayout(world, scale);
  int section = 0;
  for (const auto& u : l.units) {
    for (const char* kind : kKinds) {
      float* p = reinterpret_cast<float*>(snap.AddSection(std::string(kind) + "/" + u.name, DType::kF32, u.shard));
      for (int64_t i = 0; i < u.shard; ++i) p[i] = ExpectedValue(step, rank, section, i);
      ++section;
    }
  }
}

inline std::unique_ptr<RankSnapshot> MakeSnapshot(int64_t step, int rank, int world, int64_t scale = 1) {
  auto s = std::make_unique<RankSnapshot>();
  FillSnapshot(*s, step, rank, world, scale);
  return s;
}

inline Manifest TestFields(int world, int64_t step = 0, int64_t scale = 1) {
  Manifest m;
  m.step = step;
  m.applied_updates = step;
  m.world_size = world;
  m.zero_stage = 1;
  m.precision = "fp32";
  m.layout = TestLayout(world, scale);
  m.scaler.scale = 65536;
  m.scaler.iter = step;
  m.sampler_epoch = 1;
  m.sampler_position = step * 8;
  m.seed = 1234;
  m.config = {{"train_batch_size", 8}, {"model", {{"name", "tiny"}}}};
  return m;
}

// Runs fn(rank) on `world` threads and joins them.
inline void RunRanks(int world, const std::function<void(int)>& fn) {
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) threads.emplace_back([&fn, r] { fn(r); });
  for (auto& t : threads) t.join();
}

// Checks that checkpoint `step` (or LATEST) in dir verifies and holds exactly the test data.
inline void ExpectCheckpointHolds(const std::string& dir, int64_t step, int64_t expected_step, int world,
                                  int64_t scale = 1) {
  auto r = CheckpointReader::Open(dir, step);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Manifest& m = (*r)->manifest();
  EXPECT_EQ(m.step, expected_step);
  EXPECT_EQ(m.world_size, world);
  ASSERT_EQ(m.shards.size(), static_cast<size_t>(world));
  auto v = Verify(dir, (*r)->name());
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  passes::ZeroLayout l = TestLayout(world, scale);
  for (int rank = 0; rank < world; ++rank) {
    int section = 0;
    for (const auto& u : l.units) {
      for (const char* kind : kKinds) {
        std::vector<float> got(static_cast<size_t>(u.shard));
        Status s = (*r)->ReadElements(rank, std::string(kind) + "/" + u.name, DType::kF32, 0, u.shard, got.data());
        ASSERT_TRUE(s.ok()) << s.ToString();
        for (int64_t i = 0; i < u.shard; ++i)
          ASSERT_EQ(got[i], ExpectedValue(expected_step, rank, section, i))
              << "rank " << rank << " section " << section << " element " << i;
        ++section;
      }
    }
  }
}

// Names under dir (recursively, relative), sorted.
inline std::vector<std::string> Tree(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    out.push_back(std::filesystem::relative(e.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace zt::ckpt::testing
