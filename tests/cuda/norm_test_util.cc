// Shared CUDA norm test pieces (see norm_test_util.h).
#include "norm_test_util.h"

#include <gtest/gtest.h>

#include "backend/cpu/cpu_backend.h"
#include "ir/ops/layernorm.h"
#include "ir/ops/rmsnorm.h"
#include "support/graph_runner.h"

namespace zt::testing {
namespace {

// The statistics outputs of the family's forward: mean, rstd (layernorm) or rstd.
std::vector<DirectTensor> StatOutputs(const NormFamily& f, int64_t rows) {
  std::vector<DirectTensor> out = {OutAt(DType::kF32, {rows}, 0)};
  if (f.center) out.push_back(OutAt(DType::kF32, {rows}, 0));
  return out;
}

// w (and the bias) for rows of c elements.
std::vector<DirectTensor> Weights(const NormFamily& f, DType dt, int64_t c, size_t offset) {
  std::vector<DirectTensor> out = {RandomIn(dt, {c}, f.seed + 2, offset, 0.5f, 1.5f)};
  if (f.center) out.push_back(RandomIn(dt, {c}, f.seed + 3, offset, -0.5f, 0.5f));
  return out;
}

void Append(std::vector<DirectTensor>& to, const std::vector<DirectTensor>& more) {
  to.insert(to.end(), more.begin(), more.end());
}

void ExpectAllNear(const std::vector<std::string>& names, const std::vector<DType>& types,
                   const std::vector<std::vector<char>>& ref, const std::vector<std::vector<char>>& got) {
  ASSERT_EQ(ref.size(), names.size());
  ASSERT_EQ(got.size(), names.size());
  for (size_t k = 0; k < names.size(); ++k) ExpectNear(names[k], types[k], ref[k], got[k], DefaultTolerance(types[k]));
}

std::vector<std::string> FwdNames(const NormFamily& f) {
  return f.center ? std::vector<std::string>{"sum", "y", "mean", "rstd"} : std::vector<std::string>{"sum", "y", "rstd"};
}
std::vector<DType> FwdTypes(const NormFamily& f, DType dt) {
  std::vector<DType> t = {dt, dt, DType::kF32};
  if (f.center) t.push_back(DType::kF32);
  return t;
}
std::vector<std::string> BwdNames(const NormFamily& f) {
  return f.center ? std::vector<std::string>{"dx", "dw", "db"} : std::vector<std::string>{"dx", "dw"};
}

// a, b (at their offsets), w (, bias) for the fused forward; its outputs (sum at off_sum).
std::vector<DirectTensor> FusedInputs(const NormFamily& f, DType dt, int64_t rows, int64_t c, size_t off_a,
                                      size_t off_b) {
  std::vector<DirectTensor> in = {RandomIn(dt, {rows, c}, f.seed + 4, off_a),
                                  RandomIn(dt, {rows, c}, f.seed + 5, off_b)};
  Append(in, Weights(f, dt, c, 0));
  return in;
}
std::vector<DirectTensor> FusedOutputs(const NormFamily& f, DType dt, int64_t rows, int64_t c, size_t off_sum) {
  std::vector<DirectTensor> out = {OutAt(dt, {rows, c}, off_sum), OutAt(dt, {rows, c}, 0)};
  Append(out, StatOutputs(f, rows));
  return out;
}

}  // namespace

Backend& CudaForNormTests() {
  static std::unique_ptr<Backend> b = MakeCudaBackend();
  return *b;
}

DirectTensor RandomIn(DType dt, Shape s, uint64_t seed, size_t offset, float lo, float hi) {
  DirectTensor t;
  t.dtype = dt;
  t.shape = std::move(s);
  t.bytes = ToBytes(dt, RandomUniform(t.shape.numel(), seed, lo, hi));
  t.offset = offset;
  return t;
}

DirectTensor OutAt(DType dt, Shape s, size_t offset) {
  DirectTensor t;
  t.dtype = dt;
  t.shape = std::move(s);
  t.offset = offset;
  return t;
}

std::vector<DirectTensor> NormBwdInputs(const NormFamily& f, DType dt, int64_t rows, int64_t c, size_t offset,
                                        int64_t dres_offset) {
  DirectTensor x = RandomIn(dt, {rows, c}, f.seed + 1, offset);
  std::vector<DirectTensor> fwd_in = {x};
  Append(fwd_in, Weights(f, dt, c, offset));
  std::vector<DirectTensor> fwd_out = {OutAt(dt, {rows, c}, 0)};
  Append(fwd_out, StatOutputs(f, rows));
  CpuBackend cpu;
  auto stats = RunKernelDirect(cpu, f.fwd, {}, fwd_in, fwd_out);
  std::vector<DirectTensor> in = {RandomIn(dt, {rows, c}, f.seed + (f.center ? 4 : 3), offset), x, fwd_in[1]};
  for (size_t k = 1; k < fwd_out.size(); ++k) {
    DirectTensor s = OutAt(DType::kF32, {rows}, 0);
    s.bytes = stats[k];
    in.push_back(s);
  }
  if (dres_offset >= 0) in.push_back(RandomIn(dt, {rows, c}, f.seed + 6, static_cast<size_t>(dres_offset)));
  return in;
}

std::vector<DirectTensor> NormBwdOutputs(const NormFamily& f, DType dt, int64_t rows, int64_t c, size_t offset) {
  std::vector<DirectTensor> out = {OutAt(dt, {rows, c}, offset), OutAt(dt, {c}, offset)};
  if (f.center) out.push_back(OutAt(dt, {c}, offset));
  return out;
}

void CompareFusedForwardWithCpu(const NormFamily& f, DType dt, const Shape& x) {
  SCOPED_TRACE(std::string(f.fused) + " " + DTypeName(dt) + " x " + x.ToString());
  const Shape cs{x[-1]};
  std::vector<DeviceInput> in = {{"a", x, dt, -1.0f, 1.0f}, {"b", x, dt, -0.6f, 0.7f}, {"w", cs, dt, 0.5f, 1.5f}};
  if (f.center) in.push_back({"bias", cs, dt, -0.5f, 0.5f});
  CompareWithCpu(in, [&f](ir::Builder& b, const std::vector<ir::Value*>& v) -> std::vector<ir::Value*> {
    if (f.center) {
      auto r = ir::ops::AddLayerNorm(b, v[0], v[1], v[2], v[3], f.eps, "aln");
      return {r.sum, r.y, r.mean, r.rstd};
    }
    auto r = ir::ops::AddRmsNorm(b, v[0], v[1], v[2], f.eps, "arn");
    return {r.sum, r.y, r.rstd};
  });
}

void CompareResidualBackwardWithCpu(const NormFamily& f, DType dt, const Shape& x) {
  SCOPED_TRACE(std::string(f.bwd) + " with dresidual " + DTypeName(dt) + " x " + x.ToString());
  const Shape cs{x[-1]};
  std::vector<DeviceInput> in = {{"x", x, dt, -1.0f, 1.0f}, {"w", cs, dt, 0.5f, 1.5f}};
  if (f.center) in.push_back({"bias", cs, dt, -0.5f, 0.5f});
  in.push_back({"dy", x, dt, -1.0f, 1.0f});
  in.push_back({"dres", x, dt, -1.0f, 1.0f});
  CompareWithCpu(in, [&f](ir::Builder& b, const std::vector<ir::Value*>& v) -> std::vector<ir::Value*> {
    if (f.center) {
      auto n = ir::ops::LayerNorm(b, v[0], v[1], v[2], f.eps, "ln");
      return b.Emit(f.bwd, {v[3], v[0], v[1], n.mean, n.rstd, v[4]}, {}, "dx");
    }
    auto n = ir::ops::RmsNorm(b, v[0], v[1], f.eps, "rn");
    return b.Emit(f.bwd, {v[2], v[0], v[1], n.rstd, v[3]}, {}, "dx");
  });
}

void CompareFusedDirectWithCpu(const NormFamily& f, DType dt, int64_t rows, int64_t c, size_t off_a, size_t off_b,
                               size_t off_sum, size_t off_bwd, size_t off_dres) {
  SCOPED_TRACE(std::string(f.fused) + " / " + f.bwd + " " + DTypeName(dt) + " " + std::to_string(rows) + " x " +
               std::to_string(c) + ", offsets a " + std::to_string(off_a) + " b " + std::to_string(off_b) + " sum " +
               std::to_string(off_sum) + " bwd " + std::to_string(off_bwd) + " dres " + std::to_string(off_dres));
  CpuBackend cpu;
  Backend& cuda = CudaForNormTests();
  auto in = FusedInputs(f, dt, rows, c, off_a, off_b);
  auto out = FusedOutputs(f, dt, rows, c, off_sum);
  ExpectAllNear(FwdNames(f), FwdTypes(f, dt), RunKernelDirect(cpu, f.fused, {}, in, out),
                RunKernelDirect(cuda, f.fused, {}, in, out));
  auto bin = NormBwdInputs(f, dt, rows, c, off_bwd, static_cast<int64_t>(off_dres));
  auto bout = NormBwdOutputs(f, dt, rows, c, off_bwd);
  ExpectAllNear(BwdNames(f), std::vector<DType>(bout.size(), dt), RunKernelDirect(cpu, f.bwd, {}, bin, bout),
                RunKernelDirect(cuda, f.bwd, {}, bin, bout));
}

void ExpectFusedBitwiseEqualUnfusedOnCuda(const NormFamily& f, DType dt, int64_t rows, int64_t c, size_t offset) {
  SCOPED_TRACE(std::string(f.fused) + " / " + f.bwd + " vs unfused on CUDA, " + DTypeName(dt) + " " +
               std::to_string(rows) + " x " + std::to_string(c) + " at offset " + std::to_string(offset));
  Backend& cuda = CudaForNormTests();
  // Forward: add then norm, against the fused kernel.
  auto in = FusedInputs(f, dt, rows, c, offset, offset);
  auto out = FusedOutputs(f, dt, rows, c, offset);
  for (auto& o : out) o.offset = o.dtype == dt ? offset : 0;
  auto fused = RunKernelDirect(cuda, f.fused, {}, in, out);
  auto sum = RunKernelDirect(cuda, "add", {}, {in[0], in[1]}, {out[0]});
  DirectTensor x = in[0];
  x.bytes = sum[0];
  std::vector<DirectTensor> norm_in = {x};
  norm_in.insert(norm_in.end(), in.begin() + 2, in.end());
  auto plain = RunKernelDirect(cuda, f.fwd, {}, norm_in, std::vector<DirectTensor>(out.begin() + 1, out.end()));
  plain.insert(plain.begin(), sum[0]);
  auto names = FwdNames(f);
  auto types = FwdTypes(f, dt);
  for (size_t k = 0; k < names.size(); ++k) ExpectBitwiseEqual(names[k], types[k], plain[k], fused[k]);
  // Backward: norm_bwd then add(dx, dres), against norm_bwd with dresidual.
  auto bin = NormBwdInputs(f, dt, rows, c, offset, static_cast<int64_t>(offset));
  auto bout = NormBwdOutputs(f, dt, rows, c, offset);
  auto bfused = RunKernelDirect(cuda, f.bwd, {}, bin, bout);
  auto bplain = RunKernelDirect(cuda, f.bwd, {}, std::vector<DirectTensor>(bin.begin(), bin.end() - 1), bout);
  DirectTensor dx = bin.back();
  dx.bytes = bplain[0];
  bplain[0] = RunKernelDirect(cuda, "add", {}, {dx, bin.back()}, {bout[0]})[0];
  auto bnames = BwdNames(f);
  for (size_t k = 0; k < bnames.size(); ++k) ExpectBitwiseEqual(bnames[k], dt, bplain[k], bfused[k]);
}

void CompareFusedForwardPathsWithCpu(const NormFamily& f, const std::vector<Shape>& large) {
  const Shape shapes[] = {{1, 1},    {3, 7},    {1, 33},    {3, 768},   {7, 1000}, {5, 4097},
                          {4, 4096}, {2, 4096}, {3, 12000}, {2, 20000}, {2, 3, 33}};
  for (DType dt : kNormFloatTypes) {
    for (const Shape& s : shapes) CompareFusedForwardWithCpu(f, dt, s);
  }
  for (const Shape& s : large) {
    CompareFusedForwardWithCpu(f, DType::kBF16, s);
    CompareFusedForwardWithCpu(f, DType::kF32, s);
  }
}

void CompareResidualBackwardPathsWithCpu(const NormFamily& f, const std::vector<int64_t>& widths,
                                         const std::vector<Shape>& large) {
  for (DType dt : {DType::kF32, DType::kBF16}) {
    for (int64_t rows : {1, 7, 33}) {
      for (int64_t c : widths) CompareResidualBackwardWithCpu(f, dt, Shape{rows, c});
    }
    for (const Shape& s : {Shape{1000, 768}, Shape{2048, 3072}, Shape{4, 4096}, Shape{3, 12000}}) {
      CompareResidualBackwardWithCpu(f, dt, s);
    }
  }
  for (const Shape& s : large) CompareResidualBackwardWithCpu(f, DType::kBF16, s);
  for (const Shape& s : {Shape{3, 7}, Shape{7, 768}, Shape{4, 4096}, Shape{2, 20000}, Shape{2, 3, 33}}) {
    CompareResidualBackwardWithCpu(f, DType::kF16, s);
  }
}

void CompareFusedMisalignedWithCpu(const NormFamily& f) {
  for (DType dt : kNormFloatTypes) {
    const size_t es = DTypeSize(dt);
    for (int64_t c : {int64_t{8}, int64_t{768}, int64_t{4096}}) {
      CompareFusedDirectWithCpu(f, dt, 5, c, es, 0, 0, 0, es);   // a; dresidual
      CompareFusedDirectWithCpu(f, dt, 5, c, 0, es, 0, es, 0);   // b; the backward's other tensors
      CompareFusedDirectWithCpu(f, dt, 33, c, 0, 0, es, es, es);  // sum; everything
      CompareFusedDirectWithCpu(f, dt, 7, c, 0, 0, 0, 0, 0);     // aligned: the vector path
    }
  }
}

void ExpectFusedBitwiseEqualUnfusedOnEveryPath(const NormFamily& f) {
  for (DType dt : kNormFloatTypes) {
    for (auto [rows, c] : {std::pair<int64_t, int64_t>{16384, 768}, {2048, 4096}, {4, 4096}, {3, 7}, {33, 1032},
                           {7, 3072}, {5, 8200}, {2, 20000}}) {
      ExpectFusedBitwiseEqualUnfusedOnCuda(f, dt, rows, c, 0);
    }
    ExpectFusedBitwiseEqualUnfusedOnCuda(f, dt, 100, 768, DTypeSize(dt));
  }
}

}  // namespace zt::testing
