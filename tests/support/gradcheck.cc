// Finite-difference gradient checker.
#include "support/gradcheck.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "ir/autodiff.h"
#include "ir/ops/elementwise.h"
#include "support/graph_runner.h"

namespace zt::testing {

GradInput Arg(const std::string& name, Shape shape, bool differentiable, float lo, float hi) {
  GradInput in;
  in.name = name;
  in.shape = std::move(shape);
  in.differentiable = differentiable;
  in.lo = lo;
  in.hi = hi;
  return in;
}

void GradCheck(const std::vector<GradInput>& inputs, const GradBuildFn& build, const GradCheckOptions& o) {
  auto g = std::make_unique<ir::Graph>("gradcheck");
  ir::Builder b(g.get());
  std::vector<ir::Value*> vals;
  std::vector<ir::Value*> params;
  for (const GradInput& in : inputs) {
    ir::Value* v = in.differentiable ? b.Param(in.name, in.dtype, in.shape) : b.Input(in.name, in.dtype, in.shape);
    vals.push_back(v);
    if (in.differentiable) params.push_back(v);
  }
  std::vector<ir::Value*> outs = build(b, vals);
  ASSERT_FALSE(outs.empty());
  ir::Value* loss = nullptr;
  std::vector<std::string> proj_names, out_names;
  for (size_t k = 0; k < outs.size(); ++k) {
    ir::Value* o = outs[k];
    ir::Value* r = b.Input("proj." + std::to_string(k), o->dtype, o->shape);
    proj_names.push_back(r->name);
    out_names.push_back(o->name);
    ir::Value* term = ir::ops::ReduceSumTo(b, ir::ops::Mul(b, o, r), Shape{}, "term");
    loss = loss ? ir::ops::Add(b, loss, term, "loss") : term;
    g->outputs().push_back(o);
  }
  ASSERT_TRUE(ir::AppendBackward(*g, loss, params).ok());

  GraphRunner run(std::move(g));
  uint64_t seed = o.seed;
  std::vector<std::vector<float>> data;
  for (const GradInput& in : inputs) {
    std::vector<float> d;
    if (!in.values.empty()) d = in.values;
    else if (in.index_max > 0) {
      auto ints = RandomInts(in.shape.numel(), seed++, 0, in.index_max);
      d.assign(ints.begin(), ints.end());
    } else {
      d = RandomUniform(in.shape.numel(), seed++, in.lo, in.hi);
    }
    run.Set(in.name, d);
    data.push_back(d);
  }
  std::vector<std::vector<float>> proj;
  for (size_t k = 0; k < outs.size(); ++k) {
    auto r = RandomUniform(run.value(proj_names[k])->shape.numel(), seed++, -1.0f, 1.0f);
    run.Set(proj_names[k], r);
    proj.push_back(r);
  }
  run.Run();
  std::vector<std::vector<float>> analytic;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].differentiable) {
      analytic.emplace_back();
      continue;
    }
    const ir::Value* p = run.value(inputs[i].name);
    analytic.push_back(run.Get(run.graph().GradOf(p)));
  }

  auto eval_loss = [&]() {
    run.Run(PhaseMask{true, false, false});
    double l = 0;
    for (size_t k = 0; k < outs.size(); ++k) {
      auto ov = run.Get(out_names[k]);
      for (size_t j = 0; j < ov.size(); ++j) l += static_cast<double>(ov[j]) * proj[k][j];
    }
    return l;
  };

  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].differentiable) continue;
    int64_t n = inputs[i].shape.numel();
    std::vector<int64_t> idx;
    if (n <= o.max_elements) {
      for (int64_t j = 0; j < n; ++j) idx.push_back(j);
    } else {
      idx = RandomInts(o.max_elements, seed++, 0, n);
    }
    std::vector<float> x = data[i];
    int failures = 0;
    for (int64_t j : idx) {
      float orig = x[j];
      x[j] = static_cast<float>(orig + o.step);
      run.Set(inputs[i].name, x);
      double lp = eval_loss();
      x[j] = static_cast<float>(orig - o.step);
      run.Set(inputs[i].name, x);
      double lm = eval_loss();
      x[j] = orig;
      run.Set(inputs[i].name, x);
      double numeric = (lp - lm) / (2 * o.step);
      double a = analytic[i][j];
      if (std::fabs(a - numeric) > o.atol + o.rtol * std::fabs(numeric) && failures++ < 5) {
        ADD_FAILURE() << "d/d" << inputs[i].name << "[" << j << "]: analytic " << a << " vs numeric " << numeric;
      }
    }
    EXPECT_EQ(failures, 0) << failures << " mismatching elements of d/d" << inputs[i].name;
  }
}

}  // namespace zt::testing
