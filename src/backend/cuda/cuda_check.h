// Checking every CUDA, cuBLASLt and cuDNN call with file:line. ZT_CUDA_CHECK is for calls that
// fail only through a bug or a broken device (CHECK-fails with the error's name and text);
// CudaStatus turns a failure that can come from outside (out of memory, no device) into a Status.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "core/check.h"
#include "core/status.h"

#define ZT_CUDA_CHECK(expr)                                                                            \
  do {                                                                                                \
    cudaError_t zt_cuda_err_ = (expr);                                                                \
    ZT_CHECK(zt_cuda_err_ == cudaSuccess) << #expr << ": " << cudaGetErrorName(zt_cuda_err_) << " (" \
                                           << cudaGetErrorString(zt_cuda_err_) << ")";               \
  } while (0)

namespace zt {

inline Status CudaStatus(cudaError_t e, const std::string& what) {
  if (e == cudaSuccess) return OkStatus();
  return Status(e == cudaErrorMemoryAllocation ? StatusCode::kUnavailable : StatusCode::kInternal,
                what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

}  // namespace zt
