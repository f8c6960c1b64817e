// Test support for CUDA kernels: run ONE registered kernel directly (no graph, no executor) on a
// backend, each tensor placed a chosen number of bytes past a 256-byte aligned address. Arena
// plans only produce aligned tensors, but views into flat buffers (ZeRO) start anywhere, so this
// is how tests reach the misaligned (scalar) paths of vectorized kernels. Outputs and the
// workspace (sized by the op's workspace rule) are poisoned with 0xFF bytes first, so an element
// a kernel never writes reads as NaN. An output may alias an input (in-place ops).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/tensor.h"
#include "ir/attr.h"
#include "support/device_compare.h"

namespace zt::testing {

struct DirectTensor {
  DType dtype = DType::kF32;
  Shape shape;
  std::vector<char> bytes;  // an input's contents (outputs: ignored)
  size_t offset = 0;        // bytes past a 256-byte aligned address
  int alias_input = -1;     // outputs only: this output is that input's memory (in place)
};

// Runs the kernel registered for `op` on backend.kind() and returns each output's bytes.
// `attrs` is completed with the op's defaults.
std::vector<std::vector<char>> RunKernelDirect(Backend& backend, const std::string& op, ir::AttrMap attrs,
                                               const std::vector<DirectTensor>& inputs,
                                               const std::vector<DirectTensor>& outputs);

// A CudaBackend on device 0 (CHECK-fails when CUDA is not built or there is no device).
std::unique_ptr<Backend> MakeCudaBackend();

// (ToBytes / FromBytes: support/device_compare.h.)

// gtest failures for the first few elements whose bytes differ (shown as values and hex).
void ExpectBitwiseEqual(const std::string& what, DType dtype, const std::vector<char>& ref,
                        const std::vector<char>& got);
// gtest failures where |ref - got| > atol + rtol |ref| (infinities must match exactly).
void ExpectNear(const std::string& what, DType dtype, const std::vector<char>& ref, const std::vector<char>& got,
                Tolerance tol);

}  // namespace zt::testing
