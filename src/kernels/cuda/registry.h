// The CUDA kernel families: each registers its kernels (kernels/cuda/<family>.cu).
#pragma once

namespace zt {
class KernelRegistry;
void RegisterElementwiseCudaKernels(KernelRegistry& r);
void RegisterConstantCudaKernels(KernelRegistry& r);
void RegisterMatmulCudaKernels(KernelRegistry& r);
void RegisterViewCudaKernels(KernelRegistry& r);
void RegisterCastCudaKernels(KernelRegistry& r);
void RegisterEmbeddingCudaKernels(KernelRegistry& r);
void RegisterLayerNormCudaKernels(KernelRegistry& r);
void RegisterRmsNormCudaKernels(KernelRegistry& r);
void RegisterActivationCudaKernels(KernelRegistry& r);
void RegisterRopeCudaKernels(KernelRegistry& r);
void RegisterAttentionCudaKernels(KernelRegistry& r);
void RegisterCrossEntropyCudaKernels(KernelRegistry& r);
void RegisterAdamWCudaKernels(KernelRegistry& r);
void RegisterOptimUtilsCudaKernels(KernelRegistry& r);
void RegisterCollectiveCudaKernels(KernelRegistry& r);
void RegisterFlatCudaKernels(KernelRegistry& r);
void RegisterMatmulEpilogueCudaKernels(KernelRegistry& r);
// All of the above.
void RegisterCudaKernels(KernelRegistry& r);
}  // namespace zt
