// The list of op families: each registers its ops here, once.
#include "ir/op_registry.h"
#include "ir/ops/activation.h"
#include "ir/ops/adamw.h"
#include "ir/ops/attention.h"
#include "ir/ops/cast.h"
#include "ir/ops/collective.h"
#include "ir/ops/constant.h"
#include "ir/ops/cross_entropy.h"
#include "ir/ops/elementwise.h"
#include "ir/ops/embedding.h"
#include "ir/ops/flat.h"
#include "ir/ops/layernorm.h"
#include "ir/ops/matmul.h"
#include "ir/ops/matmul_epilogue.h"
#include "ir/ops/optim_utils.h"
#include "ir/ops/rmsnorm.h"
#include "ir/ops/rope.h"
#include "ir/ops/views.h"

namespace zt::ir {

void RegisterAllOps(OpRegistry& r) {
  RegisterConstantOps(r);
  RegisterElementwiseOps(r);
  RegisterMatmulOps(r);
  RegisterViewOps(r);
  RegisterCastOps(r);
  RegisterEmbeddingOps(r);
  RegisterLayerNormOps(r);
  RegisterRmsNormOps(r);
  RegisterActivationOps(r);
  RegisterRopeOps(r);
  RegisterAttentionOps(r);
  RegisterCrossEntropyOps(r);
  RegisterOptimUtilsOps(r);
  RegisterAdamWOps(r);
  RegisterCollectiveOps(r);
  RegisterFlatOps(r);
  RegisterMatmulEpilogueOps(r);
}

}  // namespace zt::ir
