// CUDA graph capture helpers.
#include "backend/cuda/cuda_graph.h"

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"

namespace zt {

CudaGraphExec::~CudaGraphExec() {
  cudaError_t e = cudaGraphExecDestroy(exec_);
  if (e != cudaSuccess) (void)cudaGetLastError();  // at exit the runtime may already be gone
}

Status CudaGraphExec::Launch(Stream& s) { return CudaStatus(cudaGraphLaunch(exec_, CudaStreamOf(s)), "cudaGraphLaunch"); }

Status BeginGraphCapture(Stream& origin) {
  cudaError_t e = cudaStreamBeginCapture(CudaStreamOf(origin), cudaStreamCaptureModeThreadLocal);
  if (e != cudaSuccess) (void)cudaGetLastError();
  return CudaStatus(e, "cudaStreamBeginCapture");
}

bool IsCapturing(Stream& s) {
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  cudaError_t e = cudaStreamIsCapturing(CudaStreamOf(s), &st);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return st != cudaStreamCaptureStatusNone;
}

StatusOr<std::unique_ptr<CudaGraphExec>> EndGraphCapture(Stream& origin) {
  cudaGraph_t graph = nullptr;
  cudaError_t e = cudaStreamEndCapture(CudaStreamOf(origin), &graph);
  if (e != cudaSuccess || graph == nullptr) {
    (void)cudaGetLastError();
    if (graph != nullptr) (void)cudaGraphDestroy(graph);
    return CudaStatus(e == cudaSuccess ? cudaErrorStreamCaptureInvalidated : e, "cudaStreamEndCapture");
  }
  size_t num_nodes = 0;
  if (cudaGraphGetNodes(graph, nullptr, &num_nodes) != cudaSuccess) (void)cudaGetLastError();
  cudaGraphExec_t exec = nullptr;
  e = cudaGraphInstantiate(&exec, graph, 0);
  cudaError_t d = cudaGraphDestroy(graph);  // the executable graph does not need it
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return CudaStatus(e, "cudaGraphInstantiate");
  }
  if (d != cudaSuccess) (void)cudaGetLastError();
  return std::make_unique<CudaGraphExec>(exec, num_nodes);
}

}  // namespace zt
