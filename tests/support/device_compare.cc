// CPU-vs-device comparison harness.
#include "support/device_compare.h"

#include <gtest/gtest.h>

#include <cmath>

#include "backend/cpu/cpu_backend.h"
#include "ir/autodiff.h"
#include "ir/ops/elementwise.h"
#include "runtime/executor.h"
#include "support/graph_runner.h"
#ifdef ZT_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace zt::testing {
namespace {

struct GraphAndChecks {
  std::unique_ptr<ir::Graph> graph;
  std::vector<std::string> checked;  // outputs and gradients to compare, by name
};

GraphAndChecks Build(const std::vector<DeviceInput>& inputs, const DeviceBuildFn& build, bool gradients) {
  GraphAndChecks r;
  r.graph = std::make_unique<ir::Graph>("device_compare");
  ir::Builder b(r.graph.get());
  std::vector<ir::Value*> vals, params;
  for (const auto& in : inputs) {
    bool param = gradients && IsFloating(in.dtype) && in.index_max == 0;
    ir::Value* v = param ? b.Param(in.name, in.dtype, in.shape) : b.Input(in.name, in.dtype, in.shape);
    vals.push_back(v);
    if (param) params.push_back(v);
  }
  std::vector<ir::Value*> outs = build(b, vals);
  for (ir::Value* o : outs) {
    r.graph->outputs().push_back(o);
    r.checked.push_back(o->name);
  }
  if (gradients && !params.empty()) {
    ir::Value* loss = nullptr;
    for (size_t k = 0; k < outs.size(); ++k) {
      ir::Value* proj = b.Input("proj." + std::to_string(k), outs[k]->dtype, outs[k]->shape);
      ir::Value* f32 = outs[k]->dtype == DType::kF32 ? outs[k] : b.Emit1("cast", {outs[k]}, {{"dtype", DType::kF32}});
      ir::Value* pf = proj->dtype == DType::kF32 ? proj : b.Emit1("cast", {proj}, {{"dtype", DType::kF32}});
      ir::Value* t = ir::ops::ReduceSumTo(b, ir::ops::Mul(b, f32, pf), Shape{}, "term");
      loss = loss ? ir::ops::Add(b, loss, t, "loss") : t;
    }
    ZT_CHECK_OK(ir::AppendBackward(*r.graph, loss, params));
    for (auto& [p, g] : r.graph->grads()) r.checked.push_back(g->name);
  }
  return r;
}

// Runs the graph on `backend` with the given input bytes; returns each checked value's bytes.
std::vector<std::vector<char>> RunOn(Backend& backend, const std::vector<DeviceInput>& inputs,
                                     const DeviceBuildFn& build, bool gradients,
                                     const std::map<std::string, std::vector<char>>& data, bool poison) {
  GraphAndChecks gc = Build(inputs, build, gradients);
  CompileOptions co;
  co.dead_code_elimination = false;
  // The device's own workspace rules, as a training run plans them.
  co.target = backend.kind() == DeviceKind::kCUDA ? ir::Target::kCuda : ir::Target::kCpu;
  auto program = Program::Compile(std::move(gc.graph), co);
  ZT_CHECK(program.ok()) << program.status().ToString();
  ExecutorOptions eo;
  eo.memory = ExecMemoryMode::kArena;
  eo.poison = poison;
  auto exec = Executor::Create(**program, backend, eo);
  ZT_CHECK(exec.ok()) << exec.status().ToString();
  const ir::Graph& g = (*program)->graph();
  for (const auto& [name, bytes] : data) {
    const ir::Value* v = g.FindValue(name);
    if (v) ZT_CHECK_OK((*exec)->Write(v, bytes.data(), bytes.size()));
  }
  ZT_CHECK_OK((*exec)->Run());
  std::vector<std::vector<char>> out;
  for (const auto& name : gc.checked) {
    const ir::Value* v = g.FindValue(name);
    std::vector<char> b(v->nbytes());
    ZT_CHECK_OK((*exec)->Read(v, b.data(), b.size()));
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace

CompareOptions ExactCompare() {
  CompareOptions o;
  o.tolerance = Tolerance{0, 0};
  return o;
}

std::vector<char> ToBytes(DType dtype, const std::vector<float>& v) {
  std::vector<char> out(v.size() * DTypeSize(dtype));
  for (size_t i = 0; i < v.size(); ++i) {
    switch (dtype) {
      case DType::kF32: reinterpret_cast<float*>(out.data())[i] = v[i]; break;
      case DType::kBF16: reinterpret_cast<BFloat16*>(out.data())[i] = FloatToBF16(v[i]); break;
      case DType::kF16: reinterpret_cast<Half*>(out.data())[i] = FloatToHalf(v[i]); break;
      case DType::kI32: reinterpret_cast<int32_t*>(out.data())[i] = static_cast<int32_t>(v[i]); break;
      case DType::kI64: reinterpret_cast<int64_t*>(out.data())[i] = static_cast<int64_t>(v[i]); break;
      case DType::kU8: reinterpret_cast<uint8_t*>(out.data())[i] = static_cast<uint8_t>(v[i]); break;
    }
  }
  return out;
}

std::vector<double> FromBytes(DType dtype, const std::vector<char>& b) {
  const size_t n = b.size() / DTypeSize(dtype);
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) {
    switch (dtype) {
      case DType::kF32: out[i] = reinterpret_cast<const float*>(b.data())[i]; break;
      case DType::kBF16: out[i] = BF16ToFloat(reinterpret_cast<const BFloat16*>(b.data())[i]); break;
      case DType::kF16: out[i] = HalfToFloat(reinterpret_cast<const Half*>(b.data())[i]); break;
      case DType::kI32: out[i] = reinterpret_cast<const int32_t*>(b.data())[i]; break;
      case DType::kI64: out[i] = static_cast<double>(reinterpret_cast<const int64_t*>(b.data())[i]); break;
      case DType::kU8: out[i] = reinterpret_cast<const uint8_t*>(b.data())[i]; break;
    }
  }
  return out;
}

Tolerance DefaultTolerance(DType dtype) {
  switch (dtype) {
    case DType::kBF16: return {2e-2, 2e-2};
    case DType::kF16: return {2e-3, 2e-3};
    default: return {1e-5, 1e-5};
  }
}

bool CudaAvailable() {
#ifdef ZT_WITH_CUDA
  return CudaDeviceAvailable();
#else
  return false;
#endif
}

void CompareWithCpu(const std::vector<DeviceInput>& inputs, const DeviceBuildFn& build, const CompareOptions& o) {
  // Inputs (and projections for gradients), identical for both backends.
  std::map<std::string, std::vector<char>> data;
  uint64_t seed = o.seed;
  GraphAndChecks shape_probe = Build(inputs, build, o.gradients);
  for (const auto& in : inputs) {
    std::vector<float> v;
    if (in.index_max > 0) {
      auto ids = RandomInts(in.shape.numel(), seed++, 0, in.index_max);
      v.assign(ids.begin(), ids.end());
    } else {
      v = RandomUniform(in.shape.numel(), seed++, in.lo, in.hi);
    }
    data[in.name] = ToBytes(in.dtype, v);
  }
  for (const auto& val : shape_probe.graph->values()) {
    if (val->name.rfind("proj.", 0) == 0) data[val->name] = ToBytes(val->dtype, RandomUniform(val->shape.numel(), seed++));
  }
  CpuBackend cpu;
  auto ref = RunOn(cpu, inputs, build, o.gradients, data, false);
  std::unique_ptr<Backend> other;
  if (o.other) {
    other = o.other();
  } else {
#ifdef ZT_WITH_CUDA
    auto c = CudaBackend::Create(0);
    ZT_CHECK(c.ok()) << c.status().ToString();
    other = std::move(*c);
#else
    ZT_CHECK(false) << "CompareWithCpu needs a CUDA build or an explicit backend";
#endif
  }
  auto got = RunOn(*other, inputs, build, o.gradients, data, true);
  ASSERT_EQ(ref.size(), got.size());
  for (size_t k = 0; k < ref.size(); ++k) {
    const ir::Value* v = shape_probe.graph->FindValue(shape_probe.checked[k]);
    Tolerance tol = o.tolerance.value_or(DefaultTolerance(v->dtype));
    auto a = FromBytes(v->dtype, ref[k]);
    auto b = FromBytes(v->dtype, got[k]);
    int bad = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      // Equal values pass (infinities of one sign included: rounding an out-of-range value);
      // otherwise both finite and within tolerance.
      bool ok = a[i] == b[i] || (std::isfinite(a[i]) && std::isfinite(b[i]) &&
                                 std::fabs(a[i] - b[i]) <= tol.atol + tol.rtol * std::fabs(a[i]));
      if (!ok && bad++ < 5) {
        ADD_FAILURE() << "%" << v->name << "[" << i << "] (" << DTypeName(v->dtype) << "): cpu " << a[i] << " vs device "
                      << b[i];
      }
    }
    EXPECT_EQ(bad, 0) << bad << " of " << a.size() << " elements of %" << v->name << " differ";
  }
}

}  // namespace zt::testing
