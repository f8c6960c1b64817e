// Test support for CUDA kernels: build a small graph, run it on the CPU backend (the reference)
// and on a second backend (CUDA) with identical inputs, and compare every output within a
// tolerance per dtype. The second backend's memory is poisoned first (0xFF bytes: NaN), so an
// output element a kernel never writes fails the comparison. With `gradients`, floating inputs
// become parameters, autodiff appends the backward, and every gradient is compared too.
// Tests that need a GPU call SkipWithoutCuda() first (they carry the ctest label gpu).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "ir/builder.h"

namespace zt::testing {

struct DeviceInput {
  std::string name;
  Shape shape;
  DType dtype = DType::kF32;
  float lo = -1.0f, hi = 1.0f;
  int64_t index_max = 0;  // > 0: integer ids in [0, index_max)
};

struct Tolerance {
  double atol = 1e-5;
  double rtol = 1e-5;
};
// Defaults: f32 1e-5; bf16 2e-2 (two roundings of 8-bit mantissas); f16 2e-3.
Tolerance DefaultTolerance(DType dtype);

using DeviceBuildFn = std::function<std::vector<ir::Value*>(ir::Builder&, const std::vector<ir::Value*>&)>;
using BackendFactory = std::function<std::unique_ptr<Backend>()>;

struct CompareOptions {
  bool gradients = false;     // also compare d(sum of outputs * r)/d(input) for floating inputs
  uint64_t seed = 1;
  std::optional<Tolerance> tolerance;  // default: DefaultTolerance of the first output's dtype
  BackendFactory other;       // default: a CudaBackend on device 0
};

// Host bytes of f32 values rounded to `dtype` (floats) or converted (integers), and back.
std::vector<char> ToBytes(DType dtype, const std::vector<float>& v);
std::vector<double> FromBytes(DType dtype, const std::vector<char>& b);

// Options demanding bit-identical results (tolerance 0).
CompareOptions ExactCompare();

// Adds gtest failures naming the output and element for every mismatch (the first few).
void CompareWithCpu(const std::vector<DeviceInput>& inputs, const DeviceBuildFn& build, const CompareOptions& o = {});

// GTEST_SKIP()s the calling test when no CUDA device is present (or CUDA is not built).
#define ZT_SKIP_WITHOUT_CUDA()                                                 \
  do {                                                                         \
    if (!::zt::testing::CudaAvailable()) GTEST_SKIP() << "no CUDA device";     \
  } while (0)
bool CudaAvailable();

}  // namespace zt::testing
