// CUDA attention / attention_bwd against the CPU reference, on each of the family's two paths
// (kernels/cuda/attention_cuda.cuh), chosen per call through ZT_ATTENTION (read from the
// environment at every kernel call, so the tests set it around each run):
//   fallback  our tiled kernels, f32/bf16/f16: out and lse, then dq/dk/dv with and without a
//             gradient into lse, over T = S = 1, one query over many keys, odd T and S (7, 33, 100,
//             130), T != S (bottom-right causal mask), grouped-query heads (H / Hkv = 1, 2, 3, 4)
//             and D = 3, 8, 20, 32, 64, 80, 128 (exact and padded head-dim buckets, 16-byte and
//             scalar loads), misaligned tensors, and bit-identical repeats;
//   cudnn     cuDNN's fused flash attention for bf16/f16; every case outside its scope (f32 is not
//             run there; D % 8 != 0, causal with T != S, a gradient into lse, a misaligned tensor)
//             must land on the fallback; the cases it did not take are printed with cuDNN's reason.
// Each run checks with attn::GetPathCounts() that exactly the intended path ran. The GPT-2 124M
// (B 4, T 1024, H 12, D 64) and Llama-8B (B 1, T 2048, H 32, Hkv 8, D 128) causal shapes run once
// in bf16 on both paths against one CPU reference; there cuDNN MUST run forward and backward, and
// the test fails with cuDNN's reason where it does not (when the reason is workspace, cuDNN's
// backward is then also run directly with the workspace its plan asks for, checked against the
// CPU and for identical bits twice, to say whether more workspace is all it needs). Backward runs
// take the CPU forward's out
// and lse as inputs, so a backward is judged on its own. A graph test runs the op through
// autodiff and the executor (CompareWithCpu: poisoned arena, workspace from the op's rule).
#include <gtest/gtest.h>

#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/check.h"
#include "direct_kernel.h"
#include "ir/op_registry.h"
#include "ir/ops/attention.h"
#include "kernels/cuda/attention_cuda.cuh"
#include "support/device_compare.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::DirectTensor;

const DType kFloatTypes[] = {DType::kF32, DType::kBF16, DType::kF16};
const DType kCudnnTypes[] = {DType::kBF16, DType::kF16};

struct Case {
  int64_t B, T, H, S, Hkv, D;
  bool causal;
  Shape q() const { return {B, T, H, D}; }
  Shape kv() const { return {B, S, Hkv, D}; }
  Shape lse() const { return {B, H, T}; }
  std::string Name() const {
    return "B " + std::to_string(B) + " T " + std::to_string(T) + " H " + std::to_string(H) + " S " +
           std::to_string(S) + " Hkv " + std::to_string(Hkv) + " D " + std::to_string(D) +
           (causal ? " causal" : " full");
  }
  attn::AttnDims Dims() const {
    attn::AttnDims d;
    d.B = B, d.T = T, d.H = H, d.S = S, d.Hkv = Hkv, d.D = D, d.causal = causal;
    d.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
    return d;
  }
};

const Case kCases[] = {
    {1, 1, 1, 1, 1, 8, true},        // one query, one key
    {2, 1, 4, 33, 2, 64, false},     // one query over 33 keys (decoding), GQA
    {1, 1, 4, 100, 1, 128, true},    // bottom-right causal: the one query sees all 100 keys; MQA
    {2, 7, 4, 7, 2, 8, true},        // odd T, GQA
    {1, 33, 3, 33, 3, 80, false},    // D = 80: the padded 128 bucket with 16-byte loads
    {2, 33, 6, 33, 2, 64, true},     // groups of 3 query heads
    {1, 100, 4, 100, 2, 128, true},  // partial last tiles of 64 queries and 32 keys
    {1, 100, 2, 100, 2, 80, true},
    {1, 33, 4, 100, 2, 64, true},    // T != S: bottom-right causal mask (never cuDNN)
    {2, 7, 2, 33, 1, 128, false},    // T != S without a mask
    {1, 33, 2, 33, 2, 20, true},     // D % 8 != 0: scalar loads for 16-bit types, never cuDNN
    {1, 7, 2, 7, 1, 3, false},       // D = 3: shared rows zero-padded to 4
    {1, 130, 2, 130, 1, 32, true},   // three query blocks, five key tiles, the exact 32 bucket
};

// ---- tolerances --------------------------------------------------------------------------------
// |device - cpu| <= atol + atol_max * max|cpu tensor| + rtol * |cpu|, per element. The CPU computes
// in f64 and rounds once; q and k lie in [-2, 2], v, dout and dlse in [-1, 1] (MakeInputs), so
// every intermediate is O(1) and f32 evaluation leaves absolute noise near 1e-7 even where the
// exact result is 0 (one key: ds = p (dp - delta) cancels exactly): atol 1e-6 everywhere.
struct Tol {
  double atol = 0, atol_max = 0, rtol = 0;
};

// out, dq, dk, dv (stored in the inputs' dtype), on the path that ran.
// Fallback: the same f32 arithmetic for every dtype, in another order than the CPU and with
//   expf/logf (<= 2 ulp): f32 stays within a few epsilons of the tensor's largest values; bf16
//   and f16 add only the final rounding, where CPU and GPU may land one ulp apart (<= 2^-7 and
//   2^-10 relative).
// cuDNN (bf16/f16 only): also rounds P (and dS) to the storage type before its tensor-core products
//   (PV, P^T dO, dS^T Q, dS K). An element's error is then up to 2^-9 (bf16) or 2^-11 (f16) of the
//   sum of its terms' magnitudes, which the tensor's largest value bounds only loosely (terms
//   cancel: dq at the GPT-2 shape errs by 0.9 * 2^-7 of its largest value on cuDNN 9.19):
//   atol_max 2^-6 / 2^-8, eight times the rounding unit. Structural mistakes (mask, scale, head
//   mapping, strides) err by the order of the values themselves, and lse (below) checks cuDNN's
//   logits and mask tightly.
Tol TensorTol(DType dt, bool cudnn) {
  switch (dt) {
    case DType::kBF16: return {1e-6, cudnn ? 1.0 / 64 : 1e-5, 1.0 / 100};
    case DType::kF16: return {1e-6, cudnn ? 1.0 / 256 : 1e-5, 1.0 / 500};
    default: return {1e-6, 1e-5, 1e-5};
  }
}
// lse is f32 for every dtype and depends only on the logits, exact products of the same inputs
// summed in f32: |diff| ~ 1e-6. A key missing from a row of 2048 (~5e-4), a log2-vs-ln mixup
// (x 0.69) or a wrong scale is far outside.
constexpr Tol kLseTol{2e-5, 0, 1e-5};

// The graph test compares every output and gradient with one absolute and one relative term
// (CompareWithCpu). Its values are O(0.1..1) with the inputs below (q, k in [-2, 2]), so the terms
// above for magnitude 1 (it runs on the fallback, and on cuDNN in "auto").
testing::Tolerance GraphTol(DType dt) {
  switch (dt) {
    case DType::kBF16: return {1.0 / 128, 1.0 / 100};
    case DType::kF16: return {1.0 / 512, 1.0 / 500};
    default: return {2e-5, 2e-5};
  }
}

// Adds failures for elements outside `tol`; returns max |diff| / max |cpu| for reports.
double ExpectClose(const std::string& what, DType dt, const std::vector<char>& ref, const std::vector<char>& got,
                   Tol tol) {
  EXPECT_EQ(ref.size(), got.size()) << what;
  if (ref.size() != got.size()) return INFINITY;
  const std::vector<double> a = testing::FromBytes(dt, ref), b = testing::FromBytes(dt, got);
  double amax = 0;
  for (double x : a) amax = std::max(amax, std::fabs(x));
  double worst = 0;
  int64_t bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double diff = std::fabs(a[i] - b[i]);
    const bool ok = std::isfinite(b[i]) && diff <= tol.atol + tol.atol_max * amax + tol.rtol * std::fabs(a[i]);
    if (std::isfinite(diff)) worst = std::max(worst, diff);
    if (!ok && bad++ < 5)
      ADD_FAILURE() << what << "[" << i << "] (" << DTypeName(dt) << "): cpu " << a[i] << " vs device " << b[i]
                    << " (|diff| " << diff << ", max |cpu| " << amax << ")";
  }
  EXPECT_EQ(bad, 0) << bad << " of " << a.size() << " elements of " << what << " are outside " << tol.atol << " + "
                    << tol.atol_max << " max|cpu| + " << tol.rtol << " |cpu| (max |cpu| " << amax << ")";
  return amax > 0 ? worst / amax : worst;
}

// ---- paths --------------------------------------------------------------------------------------
class ScopedPath {  // ZT_ATTENTION for the scope; the previous value (or its absence) comes back
 public:
  explicit ScopedPath(const char* path) {
    if (const char* old = std::getenv("ZT_ATTENTION")) old_ = old;
    setenv("ZT_ATTENTION", path, 1);
  }
  ~ScopedPath() {
    if (old_) {
      setenv("ZT_ATTENTION", old_->c_str(), 1);
    } else {
      unsetenv("ZT_ATTENTION");
    }
  }

 private:
  std::optional<std::string> old_;
};

enum class Ran { kCudnn, kFallback, kNone, kBoth };
const char* RanName(Ran r) {
  switch (r) {
    case Ran::kCudnn: return "cudnn";
    case Ran::kFallback: return "fallback";
    case Ran::kNone: return "no path";
    default: return "both paths";
  }
}
// Which path ran the one node run between the two snapshots.
Ran WhichRan(const attn::PathCounts& before, const attn::PathCounts& after, bool backward) {
  const int64_t c = backward ? after.cudnn_bwd - before.cudnn_bwd : after.cudnn_fwd - before.cudnn_fwd;
  const int64_t f = backward ? after.fallback_bwd - before.fallback_bwd : after.fallback_fwd - before.fallback_fwd;
  if (c == 1 && f == 0) return Ran::kCudnn;
  if (c == 0 && f == 1) return Ran::kFallback;
  return c + f == 0 ? Ran::kNone : Ran::kBoth;
}

// ---- direct runs --------------------------------------------------------------------------------
std::unique_ptr<Backend>& Cuda() {
  static std::unique_ptr<Backend> b = testing::MakeCudaBackend();
  return b;
}

DirectTensor Rand(DType dt, const Shape& s, uint64_t seed, float lo, float hi, size_t offset = 0) {
  DirectTensor t;
  t.dtype = dt;
  t.shape = s;
  t.bytes = testing::ToBytes(dt, testing::RandomUniform(s.numel(), seed, lo, hi));
  t.offset = offset;
  return t;
}
DirectTensor Out(DType dt, const Shape& s, size_t offset = 0) {
  DirectTensor t;
  t.dtype = dt;
  t.shape = s;
  t.offset = offset;
  return t;
}
DirectTensor Given(DType dt, const Shape& s, std::vector<char> bytes) {
  DirectTensor t = Out(dt, s);
  t.bytes = std::move(bytes);
  return t;
}

// Byte offsets past 256-byte aligned addresses (0 everywhere: the aligned, vectorized case).
struct Offsets {
  size_t q = 0, kv = 0, out = 0, lse = 0, grads = 0;
};

// q and k in [-2, 2] make logits of standard deviation ~1.3 (softmax rows neither flat nor
// one-hot); v, dout and dlse in [-1, 1].
struct Inputs {
  DirectTensor q, k, v, dout, dlse;
};
Inputs MakeInputs(const Case& c, DType dt, uint64_t seed, const Offsets& off = {}) {
  return {Rand(dt, c.q(), seed, -2, 2, off.q), Rand(dt, c.kv(), seed + 1, -2, 2, off.kv),
          Rand(dt, c.kv(), seed + 2, -1, 1, off.kv), Rand(dt, c.q(), seed + 3, -1, 1, off.q),
          Rand(DType::kF32, c.lse(), seed + 4, -1, 1)};
}
ir::AttrMap Attrs(const Case& c) { return {{"causal", c.causal}, {"scale", 0.0}}; }

// {out, lse}.
std::vector<std::vector<char>> Forward(Backend& b, const Case& c, DType dt, const Inputs& in, const Offsets& off = {}) {
  return testing::RunKernelDirect(b, "attention", Attrs(c), {in.q, in.k, in.v},
                                  {Out(dt, c.q(), off.out), Out(DType::kF32, c.lse(), off.lse)});
}
// {dq, dk, dv} from the given forward results (the CPU's, so that both sides see the same).
std::vector<std::vector<char>> Backward(Backend& b, const Case& c, DType dt, const Inputs& in,
                                        const std::vector<std::vector<char>>& fwd, bool dlse,
                                        const Offsets& off = {}) {
  DirectTensor out = Given(dt, c.q(), fwd[0]), lse = Given(DType::kF32, c.lse(), fwd[1]);
  out.offset = off.out;
  lse.offset = off.lse;
  std::vector<DirectTensor> ins = {in.dout, in.q, in.k, in.v, out, lse};
  if (dlse) ins.push_back(in.dlse);
  return testing::RunKernelDirect(b, "attention_bwd", Attrs(c), ins,
                                  {Out(dt, c.q(), off.grads), Out(dt, c.kv(), off.grads), Out(dt, c.kv(), off.grads)});
}

// The op's workspace (its rule in ir/ops/attention.cc), which is all cuDNN may use.
size_t OpWorkspace(const Case& c, DType dt, bool backward) {
  const ir::OpDef* def = ir::GetOp(backward ? "attention_bwd" : "attention");
  ir::AttrMap attrs = Attrs(c);
  ZT_CHECK_OK(ir::NormalizeAttrs(*def, attrs));
  const ir::TypeSpec q{dt, c.q()}, kv{dt, c.kv()}, lse{DType::kF32, c.lse()};
  std::vector<ir::TypeSpec> in, out;
  if (backward) {
    in = {q, q, kv, kv, q, lse};
    out = {q, kv, kv};
  } else {
    in = {q, kv, kv};
    out = {q, lse};
  }
  return def->ComputeWorkspace(ir::NodeSig{in, out, attrs});
}

// A case's tensors on the device for calling the cuDNN path directly, below the kernel (to ask
// cuDNN why, or to run it with the workspace its plan asks for): zeroed, or filled by Put.
class DeviceCase {
 public:
  enum Slot { kQ, kK, kV, kOut, kLse, kDout, kDq, kDk, kDv, kWs, kSlots };
  DeviceCase(const Case& c, DType dt, size_t ws_bytes) : dims_(c.Dims()), dt_(dt) {
    const size_t qb = c.q().numel() * DTypeSize(dt), kvb = c.kv().numel() * DTypeSize(dt),
                 lb = c.lse().numel() * sizeof(float);
    bytes_ = {qb, kvb, kvb, qb, lb, qb, qb, kvb, kvb, ws_bytes};
    for (size_t n : bytes_) {
      void* x = nullptr;
      ok_ = ok_ && cudaMalloc(&x, std::max<size_t>(n, 256)) == cudaSuccess &&
            cudaMemset(x, 0, std::max<size_t>(n, 256)) == cudaSuccess;
      p_.push_back(x);
    }
  }
  ~DeviceCase() {
    for (void* x : p_) cudaFree(x);
  }
  bool ok() const { return ok_; }
  void Put(Slot s, const std::vector<char>& host) {
    ASSERT_EQ(host.size(), bytes_[s]);
    ASSERT_EQ(cudaMemcpy(p_[s], host.data(), host.size(), cudaMemcpyHostToDevice), cudaSuccess);
  }
  std::vector<char> Get(Slot s) const {
    std::vector<char> host(bytes_[s]);
    EXPECT_EQ(cudaMemcpy(host.data(), p_[s], host.size(), cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
  }
  // attn::CudnnForward / CudnnBackward on the default stream, then a device sync: false with
  // *why when cuDNN declines or the run fails on the device.
  bool Run(bool backward, std::string* why) {
    bool ran;
    if (backward) {
      ran = attn::CudnnBackward(dims_, dt_,
                                {p_[kDout], p_[kQ], p_[kK], p_[kV], p_[kOut], static_cast<float*>(p_[kLse]), p_[kDq],
                                 p_[kDk], p_[kDv]},
                                p_[kWs], bytes_[kWs], nullptr, why);
    } else {
      ran = attn::CudnnForward(dims_, dt_, {p_[kQ], p_[kK], p_[kV], p_[kOut], static_cast<float*>(p_[kLse])}, p_[kWs],
                               bytes_[kWs], nullptr, why);
    }
    const cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) *why = std::string("cuDNN's run failed on the device: ") + cudaGetErrorString(e);
    return ran && e == cudaSuccess;
  }

 private:
  attn::AttnDims dims_;
  DType dt_;
  bool ok_ = true;
  std::vector<size_t> bytes_;
  std::vector<void*> p_;
};

// Why cuDNN did not run a case the kernel offered it: no plan (cuDNN's error), a plan needing more
// workspace than the op gives, or (plan and workspace fine) cuDNN's answer when called directly on
// zeroed tensors with the op's workspace.
std::string CudnnReason(const Case& c, DType dt, bool backward) {
  const attn::AttnDims d = c.Dims();
  if (!attn::CudnnSupports(d, dt)) return "outside attn::CudnnSupports (bf16/f16, D % 8 == 0, D <= 128, causal S == T)";
  std::string why;
  const int64_t need = attn::CudnnWorkspaceBytes(d, dt, backward, &why);
  if (need < 0) return "no cuDNN plan: " + why;
  const size_t have = OpWorkspace(c, dt, backward);
  if (static_cast<size_t>(need) > have)
    return "cuDNN's plan needs " + std::to_string(need) + " workspace bytes; the op's workspace rule "
           "(ir/ops/attention.cc) gives " + std::to_string(have);
  DeviceCase dc(c, dt, have);
  if (!dc.ok()) return "cudaMalloc failed while asking cuDNN";
  return dc.Run(backward, &why) ? "cuDNN runs the case when called directly: the kernel did not offer it" : why;
}

struct Outcome {
  Ran fwd = Ran::kNone, bwd = Ran::kNone;
};

// One case on the current path: forward against the CPU, then backward from the CPU's out and lse
// (with a gradient into lse when `dlse`). Returns which path ran each.
Outcome RunCase(const Case& c, DType dt, bool dlse, uint64_t seed, const Offsets& off = {}) {
  Outcome o;
  const Inputs in = MakeInputs(c, dt, seed, off);
  CpuBackend cpu;
  const auto fref = Forward(cpu, c, dt, in);
  attn::PathCounts before = attn::GetPathCounts();
  const auto fgot = Forward(*Cuda(), c, dt, in, off);
  o.fwd = WhichRan(before, attn::GetPathCounts(), false);
  ExpectClose("out", dt, fref[0], fgot[0], TensorTol(dt, o.fwd == Ran::kCudnn));
  ExpectClose("lse", DType::kF32, fref[1], fgot[1], kLseTol);

  const auto gref = Backward(cpu, c, dt, in, fref, dlse);
  before = attn::GetPathCounts();
  const auto ggot = Backward(*Cuda(), c, dt, in, fref, dlse, off);
  o.bwd = WhichRan(before, attn::GetPathCounts(), true);
  const char* names[] = {"dq", "dk", "dv"};
  for (int i = 0; i < 3; ++i) ExpectClose(names[i], dt, gref[i], ggot[i], TensorTol(dt, o.bwd == Ran::kCudnn));
  return o;
}

std::string Label(const Case& c, DType dt, bool dlse) {
  return std::string(DTypeName(dt)) + " " + c.Name() + (dlse ? " with dlse" : "");
}

TEST(CudaAttention, FallbackMatchesCpu) {
  ZT_SKIP_WITHOUT_CUDA();
  ScopedPath path("fallback");
  uint64_t seed = 100;
  for (DType dt : kFloatTypes) {
    for (const Case& c : kCases) {
      for (bool dlse : {false, true}) {
        SCOPED_TRACE(Label(c, dt, dlse));
        const Outcome o = RunCase(c, dt, dlse, seed += 10);
        EXPECT_TRUE(o.fwd == Ran::kFallback) << "forward ran on " << RanName(o.fwd);
        EXPECT_TRUE(o.bwd == Ran::kFallback) << "backward ran on " << RanName(o.bwd);
      }
    }
  }
}

TEST(CudaAttention, CudnnMatchesCpu) {
  ZT_SKIP_WITHOUT_CUDA();
  ScopedPath path("cudnn");
  std::printf("cuDNN runtime %zu (built against %d)\n", cudnnGetVersion(), CUDNN_VERSION);
  uint64_t seed = 500;
  int cudnn_runs = 0;
  for (DType dt : kCudnnTypes) {
    for (const Case& c : kCases) {
      for (bool dlse : {false, true}) {
        SCOPED_TRACE(Label(c, dt, dlse));
        const Outcome o = RunCase(c, dt, dlse, seed += 10);
        const bool in_scope = attn::CudnnSupports(c.Dims(), dt);
        // Outside cuDNN's scope (or with a gradient into lse) the fallback must run; inside, the
        // forward must run on cuDNN, and a backward cuDNN declined is printed with its reason (the
        // model shapes below require it).
        EXPECT_TRUE(o.fwd == Ran::kCudnn || o.fwd == Ran::kFallback) << "forward ran on " << RanName(o.fwd);
        EXPECT_TRUE(o.bwd == Ran::kCudnn || o.bwd == Ran::kFallback) << "backward ran on " << RanName(o.bwd);
        if (!in_scope) {
          EXPECT_TRUE(o.fwd == Ran::kFallback) << "cuDNN ran a case outside its scope";
        }
        if (!in_scope || dlse) {
          EXPECT_TRUE(o.bwd == Ran::kFallback) << "cuDNN ran a backward outside its scope (or with dlse)";
        }
        cudnn_runs += (o.fwd == Ran::kCudnn) + (o.bwd == Ran::kCudnn);
        if (in_scope) {  // cuDNN 9's fused forward takes every case in scope (and needs <= 256 B of workspace)
          EXPECT_TRUE(o.fwd == Ran::kCudnn) << "cuDNN declined a forward in its scope: " << CudnnReason(c, dt, false);
        }
        if (in_scope && !dlse && o.bwd != Ran::kCudnn)
          std::printf("[cudnn declined] backward %s: %s\n", Label(c, dt, dlse).c_str(), CudnnReason(c, dt, true).c_str());
      }
    }
  }
  EXPECT_GT(cudnn_runs, 0) << "cuDNN ran none of the cases: the cudnn path is not being tested";
}

// Offsets that defeat 16-byte loads (and cuDNN's 16-byte alignment): results must not change, and
// in "cudnn" mode the fallback must take every misaligned case.
TEST(CudaAttention, MisalignedTensors) {
  ZT_SKIP_WITHOUT_CUDA();
  const Case cases[] = {{2, 33, 4, 33, 2, 64, true}, {1, 40, 2, 40, 1, 128, false}};
  uint64_t seed = 900;
  for (const char* mode : {"fallback", "cudnn"}) {
    ScopedPath path(mode);
    for (DType dt : kFloatTypes) {
      const size_t es = DTypeSize(dt);
      const Offsets offsets[] = {{es, 0, 0, 0, 0}, {0, es, 0, 0, 0}, {0, 0, es, 0, es}, {0, 0, 0, 4, 0}};
      for (const Case& c : cases) {
        for (const Offsets& off : offsets) {
          SCOPED_TRACE(std::string(mode) + " " + Label(c, dt, false) + " offsets q " + std::to_string(off.q) + " kv " +
                       std::to_string(off.kv) + " out " + std::to_string(off.out) + " lse " + std::to_string(off.lse) +
                       " grads " + std::to_string(off.grads));
          const Outcome o = RunCase(c, dt, false, seed += 10, off);
          EXPECT_TRUE(o.fwd == Ran::kFallback) << "forward ran on " << RanName(o.fwd);
          EXPECT_TRUE(o.bwd == Ran::kFallback) << "backward ran on " << RanName(o.bwd);
        }
      }
    }
  }
}

// ---- the models' shapes ------------------------------------------------------------------------
// The backward through cuDNN called directly with the workspace its plan asks for, twice, against
// the CPU: when the kernel could not run cuDNN for want of workspace, this says whether it would
// be right (and deterministic) once the op's workspace rule gives enough.
void CudnnBackwardWithItsWorkspace(const Case& c, DType dt, const Inputs& in, const std::vector<std::vector<char>>& fref,
                                   const std::vector<std::vector<char>>& gref) {
  std::string why;
  const int64_t need = attn::CudnnWorkspaceBytes(c.Dims(), dt, true, &why);
  if (need < 0) return;
  std::vector<std::vector<char>> runs[2];
  for (auto& r : runs) {
    DeviceCase dc(c, dt, static_cast<size_t>(need));
    ASSERT_TRUE(dc.ok());
    dc.Put(DeviceCase::kQ, in.q.bytes);
    dc.Put(DeviceCase::kK, in.k.bytes);
    dc.Put(DeviceCase::kV, in.v.bytes);
    dc.Put(DeviceCase::kDout, in.dout.bytes);
    dc.Put(DeviceCase::kOut, fref[0]);
    dc.Put(DeviceCase::kLse, fref[1]);
    ASSERT_TRUE(dc.Run(true, &why)) << "cuDNN's backward with its own workspace: " << why;
    r = {dc.Get(DeviceCase::kDq), dc.Get(DeviceCase::kDk), dc.Get(DeviceCase::kDv)};
  }
  const char* names[] = {"dq", "dk", "dv"};
  double e[3];
  for (int i = 0; i < 3; ++i) {
    e[i] = ExpectClose(std::string(names[i]) + " (cuDNN with its workspace)", dt, gref[i], runs[0][i],
                       TensorTol(dt, true));
    testing::ExpectBitwiseEqual(std::string(names[i]) + " (cuDNN, second run vs first)", dt, runs[0][i], runs[1][i]);
  }
  std::printf("[cudnn, called directly with its %lld-byte workspace] %s %s: max|diff|/max|cpu| dq %.2e dk %.2e dv %.2e\n",
              static_cast<long long>(need), DTypeName(dt), c.Name().c_str(), e[0], e[1], e[2]);
}

// One CPU reference, then each path: forward, backward (twice: bit-identical), path asserted.
void ModelShape(const Case& c) {
  const DType dt = DType::kBF16;
  const Inputs in = MakeInputs(c, dt, 4242);
  CpuBackend cpu;
  const auto fref = Forward(cpu, c, dt, in);
  const auto gref = Backward(cpu, c, dt, in, fref, false);
  const char* names[] = {"dq", "dk", "dv"};
  for (const char* mode : {"fallback", "cudnn"}) {
    SCOPED_TRACE(std::string(mode) + " " + Label(c, dt, false));
    ScopedPath path(mode);
    const Ran want = std::string(mode) == "cudnn" ? Ran::kCudnn : Ran::kFallback;
    attn::PathCounts before = attn::GetPathCounts();
    const auto fgot = Forward(*Cuda(), c, dt, in);
    const Ran fwd = WhichRan(before, attn::GetPathCounts(), false);
    EXPECT_TRUE(fwd == want) << "forward ran on " << RanName(fwd)
                         << (want == Ran::kCudnn ? "; cuDNN's reason: " + CudnnReason(c, dt, false) : "");
    const double e_out = ExpectClose("out", dt, fref[0], fgot[0], TensorTol(dt, fwd == Ran::kCudnn));
    const double e_lse = ExpectClose("lse", DType::kF32, fref[1], fgot[1], kLseTol);

    before = attn::GetPathCounts();
    const auto g1 = Backward(*Cuda(), c, dt, in, fref, false);
    const Ran bwd = WhichRan(before, attn::GetPathCounts(), true);
    EXPECT_TRUE(bwd == want) << "backward ran on " << RanName(bwd)
                         << (want == Ran::kCudnn ? "; cuDNN's reason: " + CudnnReason(c, dt, true) : "");
    before = attn::GetPathCounts();
    const auto g2 = Backward(*Cuda(), c, dt, in, fref, false);
    EXPECT_TRUE(WhichRan(before, attn::GetPathCounts(), true) == bwd) << "the repeat took another path";
    double e[3];
    for (int i = 0; i < 3; ++i) {
      e[i] = ExpectClose(names[i], dt, gref[i], g1[i], TensorTol(dt, bwd == Ran::kCudnn));
      testing::ExpectBitwiseEqual(std::string(names[i]) + " (second run vs first)", dt, g1[i], g2[i]);
    }
    std::printf("[%s] %s %s: forward on %s, backward on %s; max|diff|/max|cpu| out %.2e lse %.2e dq %.2e dk %.2e "
                "dv %.2e\n", mode, DTypeName(dt), c.Name().c_str(), RanName(fwd), RanName(bwd), e_out, e_lse, e[0],
                e[1], e[2]);
    if (want == Ran::kCudnn && bwd != Ran::kCudnn) CudnnBackwardWithItsWorkspace(c, dt, in, fref, gref);
  }
}

TEST(CudaAttention, Gpt2Shape) {
  ZT_SKIP_WITHOUT_CUDA();
  ModelShape({4, 1024, 12, 1024, 12, 64, true});
}

TEST(CudaAttention, Llama8bShape) {
  ZT_SKIP_WITHOUT_CUDA();
  ModelShape({1, 2048, 32, 2048, 8, 128, true});
}

// The fallback is deterministic: forward and backward repeated give identical bits (f32 and a GQA
// shape with several heads per key tile, so dk/dv sum over heads and query tiles).
TEST(CudaAttention, FallbackBitIdenticalRunToRun) {
  ZT_SKIP_WITHOUT_CUDA();
  ScopedPath path("fallback");
  const Case c{2, 257, 8, 257, 2, 64, true};
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(Label(c, dt, true));
    const Inputs in = MakeInputs(c, dt, 77);
    const auto f1 = Forward(*Cuda(), c, dt, in), f2 = Forward(*Cuda(), c, dt, in);
    testing::ExpectBitwiseEqual("out", dt, f1[0], f2[0]);
    testing::ExpectBitwiseEqual("lse", DType::kF32, f1[1], f2[1]);
    const auto g1 = Backward(*Cuda(), c, dt, in, f1, true), g2 = Backward(*Cuda(), c, dt, in, f1, true);
    const char* names[] = {"dq", "dk", "dv"};
    for (int i = 0; i < 3; ++i) testing::ExpectBitwiseEqual(names[i], dt, g1[i], g2[i]);
  }
}

// ---- through autodiff and the executor ---------------------------------------------------------
// CompareWithCpu builds q, k, v as parameters, appends the backward (attention_bwd with a dlse
// input when lse is an output too), runs both backends (GPU memory poisoned, workspace from the
// op's rule in the arena) and compares out [, lse] and dq, dk, dv.
void CompareGraph(const Case& c, DType dt, bool lse_output) {
  SCOPED_TRACE(Label(c, dt, lse_output) + (lse_output ? "" : " (out only)"));
  testing::CompareOptions o;
  o.gradients = true;
  o.tolerance = GraphTol(dt);
  const bool causal = c.causal;
  testing::CompareWithCpu({{"q", c.q(), dt, -2, 2}, {"k", c.kv(), dt, -2, 2}, {"v", c.kv(), dt}},
                          [causal, lse_output](ir::Builder& b, const std::vector<ir::Value*>& v) {
                            std::vector<ir::Value*> r = ir::ops::Attention(b, v[0], v[1], v[2], causal, 0.0, "attn");
                            if (!lse_output) r.resize(1);
                            return r;
                          },
                          o);
}

TEST(CudaAttention, GraphGradientsMatchCpu) {
  ZT_SKIP_WITHOUT_CUDA();
  const Case cases[] = {{2, 33, 4, 33, 2, 64, true}, {1, 7, 3, 33, 1, 80, false}};
  {
    ScopedPath path("fallback");
    for (DType dt : kFloatTypes) {
      for (const Case& c : cases) {
        const attn::PathCounts before = attn::GetPathCounts();
        CompareGraph(c, dt, true);
        CompareGraph(c, dt, false);
        const attn::PathCounts after = attn::GetPathCounts();
        EXPECT_EQ(after.fallback_fwd - before.fallback_fwd, 2) << Label(c, dt, false);
        EXPECT_EQ(after.fallback_bwd - before.fallback_bwd, 2) << Label(c, dt, false);
        EXPECT_EQ(after.cudnn_fwd + after.cudnn_bwd, before.cudnn_fwd + before.cudnn_bwd) << "cuDNN ran in fallback mode";
      }
    }
  }
  {
    // "auto" (the default): cuDNN where it runs. f32 never goes there; bf16 forward does.
    ScopedPath path("auto");
    attn::PathCounts before = attn::GetPathCounts();
    CompareGraph(cases[0], DType::kF32, false);
    attn::PathCounts after = attn::GetPathCounts();
    EXPECT_EQ(after.fallback_fwd - before.fallback_fwd, 1);
    EXPECT_EQ(after.cudnn_fwd - before.cudnn_fwd, 0);
    before = after;
    CompareGraph(cases[0], DType::kBF16, false);
    after = attn::GetPathCounts();
    EXPECT_EQ(after.cudnn_fwd - before.cudnn_fwd, 1)
        << "auto did not take cuDNN for a bf16 forward it supports; cuDNN's reason: "
        << CudnnReason(cases[0], DType::kBF16, false);
    std::printf("[auto] bf16 %s: backward on %s\n", cases[0].Name().c_str(),
                after.cudnn_bwd > before.cudnn_bwd ? "cudnn" : "fallback");
  }
}

}  // namespace
}  // namespace zt
