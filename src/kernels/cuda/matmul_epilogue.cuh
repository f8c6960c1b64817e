// Test hooks of the CUDA matmul epilogue kernels (kernels/cuda/matmul_epilogue.cu). Plain C++:
// includable from .cc. An epilogue op runs as one cuBLASLt call with a fused epilogue when it can,
// and otherwise unfused (the matmul kernel, then the gelu / gelu_bwd / reduce_sum_to kernel): the
// unfused runs are counted, so tests can require that a problem took the fused path, and can force
// the unfused path to test it too.
#pragma once

#include <cstdint>

namespace zt {

// Number of matmul_gelu / matmul_dgelu / matmul_bgrad calls that ran unfused since the process
// started.
int64_t MatmulEpilogueCudaFallbackCount();
// When true, every epilogue op runs unfused (tests only); its matmul still runs through cuBLASLt
// unless SetMatmulCudaForceFallback (matmul.cuh) forces the tiled kernel too.
void SetMatmulEpilogueCudaForceFallback(bool force);

}  // namespace zt
