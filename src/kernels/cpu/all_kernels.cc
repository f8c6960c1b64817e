// The list of CPU kernel families: each registers its kernels here, once.
#include "kernels/cpu/activation.h"
#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cast.h"
#include "kernels/cpu/collective.h"
#include "kernels/cpu/constant.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/flat.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_epilogue.h"
#include "kernels/cpu/optim_utils.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/views.h"
#include "kernels/kernel.h"

namespace zt {

void RegisterCpuKernels(KernelRegistry& r) {
  RegisterConstantCpuKernels(r);
  RegisterElementwiseCpuKernels(r);
  RegisterMatmulCpuKernels(r);
  RegisterViewCpuKernels(r);
  RegisterCastCpuKernels(r);
  RegisterEmbeddingCpuKernels(r);
  RegisterLayerNormCpuKernels(r);
  RegisterRmsNormCpuKernels(r);
  RegisterActivationCpuKernels(r);
  RegisterRopeCpuKernels(r);
  RegisterAttentionCpuKernels(r);
  RegisterCrossEntropyCpuKernels(r);
  RegisterOptimUtilsCpuKernels(r);
  RegisterAdamWCpuKernels(r);
  RegisterCollectiveCpuKernels(r);
  RegisterFlatCpuKernels(r);
  RegisterMatmulEpilogueCpuKernels(r);
}

}  // namespace zt
