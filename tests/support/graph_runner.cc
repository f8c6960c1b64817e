// GraphRunner implementation.
#include "support/graph_runner.h"

#include <gtest/gtest.h>

#include <random>

#include "kernels/cpu/dispatch.h"

namespace zt::testing {

GraphRunner::GraphRunner(std::unique_ptr<ir::Graph> g, ExecMemoryMode mode, bool dce) {
  CompileOptions opts;
  opts.dead_code_elimination = dce;
  auto p = Program::Compile(std::move(g), opts);
  ZT_CHECK(p.ok()) << p.status().ToString();
  program_ = std::move(*p);
  ExecutorOptions eo;
  eo.memory = mode;
  auto e = Executor::Create(*program_, backend_, eo);
  ZT_CHECK(e.ok()) << e.status().ToString();
  exec_ = std::move(*e);
}

ir::Value* GraphRunner::value(const std::string& name) const {
  ir::Value* v = program_->graph().FindValue(name);
  ZT_CHECK(v != nullptr) << "no value %" << name;
  return v;
}

void GraphRunner::Set(const std::string& name, const std::vector<float>& data) {
  ir::Value* v = value(name);
  ZT_CHECK_EQ(static_cast<int64_t>(data.size()), v->shape.numel()) << "%" << name;
  Tensor t = exec_->tensor(v);
  if (IsFloating(v->dtype)) {
    for (size_t i = 0; i < data.size(); ++i) SetF32(t, static_cast<int64_t>(i), data[i]);
  } else {
    std::vector<int64_t> ints(data.begin(), data.end());
    SetInts(name, ints);
  }
}

void GraphRunner::SetInts(const std::string& name, const std::vector<int64_t>& data) {
  ir::Value* v = value(name);
  ZT_CHECK_EQ(static_cast<int64_t>(data.size()), v->shape.numel()) << "%" << name;
  Tensor t = exec_->tensor(v);
  for (size_t i = 0; i < data.size(); ++i) {
    switch (v->dtype) {
      case DType::kI32: t.as<int32_t>()[i] = static_cast<int32_t>(data[i]); break;
      case DType::kI64: t.as<int64_t>()[i] = data[i]; break;
      case DType::kU8: t.as<uint8_t>()[i] = static_cast<uint8_t>(data[i]); break;
      default: SetF32(t, static_cast<int64_t>(i), static_cast<float>(data[i]));
    }
  }
}

std::vector<float> GraphRunner::Get(const ir::Value* v) const {
  Tensor t = exec_->tensor(v);
  std::vector<float> out(static_cast<size_t>(v->shape.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    switch (v->dtype) {
      case DType::kI32: out[i] = static_cast<float>(t.as<int32_t>()[i]); break;
      case DType::kI64: out[i] = static_cast<float>(t.as<int64_t>()[i]); break;
      case DType::kU8: out[i] = static_cast<float>(t.as<uint8_t>()[i]); break;
      default: out[i] = GetF32(t, static_cast<int64_t>(i));
    }
  }
  return out;
}

std::vector<float> GraphRunner::Get(const std::string& name) const { return Get(value(name)); }

void GraphRunner::Run(PhaseMask phases) {
  Status s = exec_->Run(phases);
  ZT_CHECK(s.ok()) << s.ToString();
}

std::vector<float> RandomUniform(int64_t n, uint64_t seed, float lo, float hi) {
  std::mt19937_64 rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) {
    double u = static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
    x = static_cast<float>(lo + (hi - lo) * u);
  }
  return v;
}

std::vector<int64_t> RandomInts(int64_t n, uint64_t seed, int64_t lo, int64_t hi) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo));
  return v;
}

std::vector<float> RoundTo(DType dtype, const std::vector<float>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    out[i] = dtype == DType::kBF16 ? BF16ToFloat(FloatToBF16(v[i]))
             : dtype == DType::kF16 ? HalfToFloat(FloatToHalf(v[i]))
                                    : v[i];
  }
  return out;
}

}  // namespace zt::testing
