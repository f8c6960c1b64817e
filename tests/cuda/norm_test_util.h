// Shared pieces of the CUDA layernorm and rmsnorm tests (layernorm_test.cc, rmsnorm_test.cc): the
// CUDA backend, input/output tensors for direct kernel runs, each family's op names and the
// inputs its kernels take, and the checks of the fused residual forms (add_layernorm /
// add_rmsnorm, the dresidual of the backward) that both families run:
//  - against the CPU kernels (graphs through the executor, outputs poisoned; or direct runs that
//    place each tensor at a chosen misalignment), within the existing tests' tolerances;
//  - against the unfused CUDA kernels followed by the CUDA `add` kernel, BIT FOR BIT: the fused
//    variants only change how the normalized row is loaded and how dx is stored.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "direct_kernel.h"

namespace zt::testing {

inline const DType kNormFloatTypes[] = {DType::kF32, DType::kBF16, DType::kF16};

// One CudaBackend for the direct runs of the calling test binary.
Backend& CudaForNormTests();

DirectTensor RandomIn(DType dt, Shape s, uint64_t seed, size_t offset, float lo = -1.0f, float hi = 1.0f);
DirectTensor OutAt(DType dt, Shape s, size_t offset);

struct NormFamily {
  const char* fwd;    // "layernorm" / "rmsnorm"
  const char* fused;  // "add_layernorm" / "add_rmsnorm"
  const char* bwd;    // "layernorm_bwd" / "rmsnorm_bwd"
  bool center;        // layernorm: mean and bias too
  uint64_t seed;      // base of the input seeds
  double eps;
};
inline constexpr NormFamily kLayerNormFamily{"layernorm", "add_layernorm", "layernorm_bwd", true, 10, 1e-5};
inline constexpr NormFamily kRmsNormFamily{"rmsnorm", "add_rmsnorm", "rmsnorm_bwd", false, 20, 1e-6};

// The backward's inputs for rows x c, every tensor `offset` bytes past 16-byte alignment: dy, x,
// w, the CPU forward's statistics (mean, rstd or rstd), and with `dres_offset` >= 0 a dresidual
// placed at that offset.
std::vector<DirectTensor> NormBwdInputs(const NormFamily& f, DType dt, int64_t rows, int64_t c, size_t offset,
                                        int64_t dres_offset = -1);
// dx, dw (, db).
std::vector<DirectTensor> NormBwdOutputs(const NormFamily& f, DType dt, int64_t rows, int64_t c, size_t offset);

// The fused forward through CompareWithCpu: (sum, y, stats) of add_norm(a, b, w[, bias]).
void CompareFusedForwardWithCpu(const NormFamily& f, DType dt, const Shape& x);
// The backward with dresidual through CompareWithCpu: (dx, dw[, db]) of norm_bwd(dy, x, w,
// stats of norm(x), dres).
void CompareResidualBackwardWithCpu(const NormFamily& f, DType dt, const Shape& x);

// Direct runs on CUDA and CPU of the fused forward (a, b, sum at offsets off_a, off_b, off_sum;
// w, bias and the statistics aligned) and of the backward with a dresidual at `off_dres` (every
// other tensor at off_bwd): every output within tolerance of the CPU's.
void CompareFusedDirectWithCpu(const NormFamily& f, DType dt, int64_t rows, int64_t c, size_t off_a, size_t off_b,
                               size_t off_sum, size_t off_bwd, size_t off_dres);

// On CUDA only: add_norm(a, b, ...) against add(a, b) then norm(sum, ...), and norm_bwd(..., dres)
// against norm_bwd(...) then add(dx, dres): every output bit for bit (tensors at `offset`).
void ExpectFusedBitwiseEqualUnfusedOnCuda(const NormFamily& f, DType dt, int64_t rows, int64_t c, size_t offset);

// The sweeps both families run (each test skips without a GPU first):
// the fused forward on every forward path (vector and scalar widths, one- and multi-warp teams,
// the loop kernel) in every float type, and `large` (f32 and bf16);
void CompareFusedForwardPathsWithCpu(const NormFamily& f, const std::vector<Shape>& large);
// the dresidual backward on every backward path (rows 1, 7, 33 x `widths`, then many rows and
// blocks, a loop-kernel width, the 4 x 4096 shape and `large`) in f32 and bf16, a few in f16;
void CompareResidualBackwardPathsWithCpu(const NormFamily& f, const std::vector<int64_t>& widths,
                                         const std::vector<Shape>& large);
// a, b, sum or dresidual misaligned alone (each forces the scalar path), everything misaligned,
// everything aligned, for C = 8, 768, 4096 in every float type;
void CompareFusedMisalignedWithCpu(const NormFamily& f);
// fused against unfused on CUDA on every path (and misaligned), every float type.
void ExpectFusedBitwiseEqualUnfusedOnEveryPath(const NormFamily& f);

}  // namespace zt::testing
