// Test hooks of the CUDA matmul kernel (kernels/cuda/matmul.cu). Plain C++: includable from .cc.
// The kernel runs through cuBLASLt; when cuBLASLt has no algorithm for a problem (or refuses it) it
// falls back to a simple tiled kernel and counts that, so tests can require that it did not happen
// (a silent fallback would be correct but slow) and can force the fallback to test it too.
#pragma once

#include <cstdint>

namespace zt {

// Number of matmul calls that took the fallback kernel since the process started.
int64_t MatmulCudaFallbackCount();
// Number of matmul calls that ran on 16-byte aligned padded copies of misaligned operands.
int64_t MatmulCudaPaddedCount();
// When true, every CUDA matmul takes the fallback kernel (tests only).
void SetMatmulCudaForceFallback(bool force);
// Number of distinct problems whose cuBLASLt algorithm is cached.
int64_t MatmulCudaCachedAlgos();

}  // namespace zt
