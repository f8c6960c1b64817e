// Parameter initialization, GPT-2 / Llama style: weights ~ N(0, 0.02^2); residual output
// projections (attn.c_proj, mlp.c_proj, o_proj, down_proj) scaled by 1/sqrt(2 * n_layer); biases 0;
// norm gains 1. Deterministic from (seed, parameter name): the order of initialization does not
// matter, and the same name gets the same values in any graph. Each 64Ki-element chunk draws from
// its own generator (seeded from seed, name and chunk index), so large parameters fill in
// parallel with values independent of the thread count.
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace zt::models {

struct InitOptions {
  double std = 0.02;
  int64_t n_layer = 1;
  uint64_t seed = 0;
};

// Fills a host tensor (f32, bf16 or f16) for the parameter called `name`.
void InitParam(const std::string& name, const Tensor& t, const InitOptions& o);

}  // namespace zt::models
