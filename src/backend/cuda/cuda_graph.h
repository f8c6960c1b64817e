// CUDA graph capture and replay of work queued on a CudaBackend's streams. Capture starts on an
// origin stream in cudaStreamCaptureModeThreadLocal; other streams join it by waiting on events
// recorded on captured streams, and must be joined back (the origin waits on their events)
// before the capture ends. Invariant: a CudaGraphExec replays exactly the captured kernels with
// the captured arguments and addresses; inputs change between replays only through the memory
// those addresses name.
#pragma once

#include <cuda_runtime.h>

#include <memory>

#include "backend/backend.h"
#include "core/status.h"

namespace zt {

class CudaGraphExec {
 public:
  CudaGraphExec(cudaGraphExec_t exec, size_t num_nodes) : exec_(exec), num_nodes_(num_nodes) {}
  ~CudaGraphExec();
  CudaGraphExec(const CudaGraphExec&) = delete;
  CudaGraphExec& operator=(const CudaGraphExec&) = delete;

  // Queues one replay on `s` (asynchronous).
  Status Launch(Stream& s);
  size_t num_nodes() const { return num_nodes_; }

 private:
  cudaGraphExec_t exec_;
  size_t num_nodes_;
};

// Starts capturing what this thread queues on `origin` (a CUDA backend's stream).
Status BeginGraphCapture(Stream& origin);
// Ends the capture begun on `origin` and instantiates it. Whatever happened during the capture
// (an uncapturable call invalidated it, a stream was not joined back, instantiation failed),
// the capture is over afterwards and no CUDA error is left pending; failures are a Status.
StatusOr<std::unique_ptr<CudaGraphExec>> EndGraphCapture(Stream& origin);
// Whether `s` is being captured now.
bool IsCapturing(Stream& s);

}  // namespace zt
