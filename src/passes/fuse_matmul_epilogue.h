// FuseMatmulEpilogue ("fuse_matmul_epilogue"): folds into a matmul the elementwise step or the
// reduction that follows it, as the ops of ir/ops/matmul_epilogue.h (cuBLASLt epilogues on CUDA):
//   u = matmul(a, b[, bias]); h = gelu(u)        -> h, u = matmul_gelu(a, b[, bias])
//       (u may have other users, e.g. the backward's gelu_bwd: it is the fused node's aux output);
//   dh = matmul(a, b); du = gelu_bwd(dh, x)      -> du = matmul_dgelu(a, b, x)
//       (only when dh has no other use and no bias);
//   dW = matmul(a, b){trans_a, !trans_b} with b = dC or a [rows, N] reshape of it, and
//   db = reduce_sum_to(dC, [N])                  -> dW, db = matmul_bgrad(a, b){bias_of="b"}
//       (bias_of="a" when a is dC: the nn.Linear weight layout, dW = dC^T x).
// It runs among the fusion passes (passes/fusion.h), after autodiff and sharding, on the whole
// step. A fused node takes the place of one of the nodes it replaces, chosen so that every input is
// defined before it and every user of its outputs comes after it (and likewise for ordering
// edges); its outputs keep the replaced values' names, types and memory categories, so uses,
// graph outputs and gradient entries are unchanged. Where no such place exists, where the nodes
// differ in phase or stream, or where the fused op's shape rule rejects the operands (e.g.
// matmul_bgrad outside the weight-gradient layout), the nodes are left alone.
// Invariant: the fused graph computes the same values (bit-identical on the CPU reference).
#pragma once

#include "passes/pass.h"

namespace zt::passes {

class FuseMatmulEpilogue final : public Pass {
 public:
  struct Options {
    bool gelu = true;   // matmul_gelu and matmul_dgelu
    bool bgrad = true;  // matmul_bgrad
  };
  FuseMatmulEpilogue() = default;
  explicit FuseMatmulEpilogue(Options o) : o_(o) {}
  std::string name() const override { return "fuse_matmul_epilogue"; }
  StatusOr<bool> Run(ir::Graph& g) override;

 private:
  Options o_;
};

}  // namespace zt::passes
