// Test support: checks backward rules (through autodiff and the executor) against central finite
// differences. The checked scalar is L = sum_k <out_k, r_k> for fixed random r_k over the outputs
// the build function returns; differentiable inputs become params so autodiff computes dL/dx.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ir/builder.h"

namespace zt::testing {

struct GradInput {
  std::string name;
  Shape shape;
  DType dtype = DType::kF32;
  bool differentiable = true;  // false: an input (e.g. ids), not checked
  float lo = -1.0f, hi = 1.0f;  // uniform range for floats
  int64_t index_max = 0;        // >0: integer ids uniform in [0, index_max)
  std::vector<float> values;    // explicit values instead of random ones
};

// A checked (or, with differentiable = false, a fixed) f32 input drawn uniformly from [lo, hi].
GradInput Arg(const std::string& name, Shape shape, bool differentiable = true, float lo = -1, float hi = 1);

struct GradCheckOptions {
  double step = 1e-2;       // finite-difference step h
  double atol = 2e-3;       // |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 2e-2;
  int max_elements = 48;    // per input; a random sample when larger
  uint64_t seed = 1234;
};

using GradBuildFn = std::function<std::vector<ir::Value*>(ir::Builder&, const std::vector<ir::Value*>&)>;

// Adds gtest failures naming the input and element for every mismatch.
void GradCheck(const std::vector<GradInput>& inputs, const GradBuildFn& build, const GradCheckOptions& options = {});

}  // namespace zt::testing
