// The list of CUDA kernel families: each registers its kernels here, once.
#include "kernels/cuda/registry.h"

namespace zt {

void RegisterCudaKernels(KernelRegistry& r) {
  RegisterElementwiseCudaKernels(r);
  RegisterConstantCudaKernels(r);
  RegisterMatmulCudaKernels(r);
  RegisterViewCudaKernels(r);
  RegisterCastCudaKernels(r);
  RegisterEmbeddingCudaKernels(r);
  RegisterLayerNormCudaKernels(r);
  RegisterRmsNormCudaKernels(r);
  RegisterActivationCudaKernels(r);
  RegisterRopeCudaKernels(r);
  RegisterAttentionCudaKernels(r);
  RegisterCrossEntropyCudaKernels(r);
  RegisterAdamWCudaKernels(r);
  RegisterOptimUtilsCudaKernels(r);
  RegisterCollectiveCudaKernels(r);
  RegisterFlatCudaKernels(r);
  RegisterMatmulEpilogueCudaKernels(r);
}

}  // namespace zt
