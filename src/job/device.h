// Choosing the device a training process runs on: ZT_DEVICE ('auto', 'cpu' or 'cuda') and the
// worker's LOCAL_RANK. 'auto' takes GPU LOCAL_RANK when CUDA is built and a GPU is present, else
// the CPU; 'cuda' without a usable GPU is an error that says why. Also the device's peak flop
// rate for MFU.
#pragma once

#include <memory>

#include "backend/backend.h"
#include "config/run_config.h"
#include "core/status.h"

namespace zt::job {

StatusOr<std::unique_ptr<Backend>> CreateBackend(int local_rank);

// Dense peak flop/s of `backend` for a run's precision (bf16/fp16 tensor cores, fp32 as TF32);
// 0 when unknown (the CPU, unlisted GPUs).
double PeakFlops(Backend& backend, config::Precision precision);

}  // namespace zt::job
