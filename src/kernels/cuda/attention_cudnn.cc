// cuDNN 9 fused flash attention (forward and backward) through the backend graph API, without
// cudnn-frontend. The fused SDPA engines match an operation graph of matmul / pointwise / reduction
// / reshape nodes; the graphs built here are the ones cudnn-frontend's SDPA nodes lower to for
// cuDNN 9.x (bmm1 -> scale -> causal select -> softmax with stats -> bmm2; and the backward with
// dO.O row sums, recomputed exp(S - stats), dV = P^T dO, dS = P (dP - sum), dK = dS^T Q,
// dQ = dS K). Tensors keep the op's (B, T, H, D) memory: the graph sees them as (B, H, T, D) with
// strides (T H D, D, H D, 1), K and V as their transposes where a matmul wants them.
// Scope: bf16/f16 storage, D % 8 == 0 and D <= 128, no mask or a causal mask with S == T (the
// bottom-right form is equal to the top-left one then); anything else, any backend error, a plan
// that needs more workspace than the op provides, or a misaligned pointer returns false and the
// caller runs our own kernels. Backward plans whose engine declares itself non-deterministic are
// not used (reductions feeding parameters must be bit-reproducible).
// Workspace (measured with cuDNN 9.19 on H100/H200): forward plans need 0 or 256 bytes; backward
// plans (the deterministic engine 6: no dQ_accum tensor in the graph, so cuDNN keeps dS in its
// workspace) need about 2 B H T S (dS, 16-bit) + 4 B H T (row sums) [+ 4 B H T D, an f32 dQ
// accumulator, when H != Hkv] bytes with T and S rounded up to 64 at large shapes (GPT-2 124M:
// 100,860,160; Llama-8B: 302,252,288), more at small ones. The op's rule (ir/ops/attention.cc,
// shared with the CPU kernel) gives 8 B Hkv S D, so the backward falls back until that rule grows,
// e.g. to at least 2 B H T128 S128 + 4 B H T128 (D + 1) + 1 MiB (T128: T rounded up to 128).
// Invariants: a plan is built once per (device, shape, dtype, mask) and cached, failures too (a
// failed build is not retried every step); execution never allocates and never synchronizes the
// host. The path runs on its own cuDNN handle per device (see HandleFor).
#include <cudnn.h>

#include <array>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/logging.h"
#include "kernels/cuda/attention_cuda.cuh"

// OPERATIONGRAPH_HANDLE and EXECUTION_PLAN_HANDLE are marked deprecated in newer cuDNN 9 headers
// but remain the documented way to bind a graph to a handle across every 9.x release.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace zt::attn {
namespace {

using Dims4 = std::array<int64_t, 4>;

// Unique ids of the tensors the caller binds (the rest are virtual, numbered from kFirstVirtual).
enum Uid : int64_t {
  kQ = 1, kK, kV, kO, kStats, kDO, kDQ, kDK, kDV, kScale, kMaskFill, kOne,
  kFirstVirtual = 100,
};

struct Owned {
  cudnnBackendDescriptor_t d = nullptr;
  Owned() = default;
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  ~Owned() {
    if (d) cudnnBackendDestroyDescriptor(d);
  }
};

// A finalized plan and everything it references.
struct Plan {
  std::vector<std::unique_ptr<Owned>> descriptors;  // kept alive for the plan's lifetime
  cudnnBackendDescriptor_t plan = nullptr;
  int64_t workspace = 0;
  int64_t engine = -1;
  float mask_fill = std::numeric_limits<float>::lowest();
  float one = 1.0f;
  std::string error;  // non-empty: no plan (why)
};

// Builds one operation graph and its plan; records the first failure with the step that failed.
class Builder {
 public:
  Builder(cudnnHandle_t handle, Plan* plan) : handle_(handle), plan_(plan) {}

  bool ok() const { return status_ == CUDNN_STATUS_SUCCESS && plan_->error.empty(); }

  cudnnBackendDescriptor_t Create(cudnnBackendDescriptorType_t type, const char* what) {
    auto o = std::make_unique<Owned>();
    if (ok()) Check(cudnnBackendCreateDescriptor(type, &o->d), what);
    cudnnBackendDescriptor_t d = o->d;
    plan_->descriptors.push_back(std::move(o));
    return d;
  }
  void Set(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
           int64_t count, const void* value, const char* what) {
    if (ok()) Check(cudnnBackendSetAttribute(d, name, type, count, value), what);
  }
  void Link(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name, cudnnBackendDescriptor_t value,
            const char* what) {
    Set(d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &value, what);
  }
  void Finalize(cudnnBackendDescriptor_t d, const char* what) {
    if (ok()) Check(cudnnBackendFinalize(d), what);
  }

  cudnnBackendDescriptor_t Tensor(int64_t uid, cudnnDataType_t type, Dims4 dims, Dims4 strides, bool is_virtual,
                                  bool by_value = false) {
    cudnnBackendDescriptor_t t = Create(CUDNN_BACKEND_TENSOR_DESCRIPTOR, "tensor");
    const int64_t alignment = 16;
    Set(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor uid");
    Set(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type, "tensor type");
    Set(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data(), "tensor dims");
    Set(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides.data(), "tensor strides");
    Set(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment, "tensor alignment");
    Set(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual, "tensor virtual");
    if (by_value) Set(t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value, "tensor by value");
    Finalize(t, "tensor");
    return t;
  }
  cudnnBackendDescriptor_t Virtual(cudnnDataType_t type, Dims4 dims, Dims4 strides) {
    return Tensor(next_uid_++, type, dims, strides, true);
  }
  cudnnBackendDescriptor_t Scalar(int64_t uid) {
    return Tensor(uid, CUDNN_DATA_FLOAT, {1, 1, 1, 1}, {1, 1, 1, 1}, false, true);
  }

  // y = mode(x[, b[, t]]) computed in `prec`; `axis` for GEN_INDEX.
  void Pointwise(cudnnPointwiseMode_t mode, cudnnDataType_t prec, cudnnBackendDescriptor_t x,
                 cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t t, cudnnBackendDescriptor_t y,
                 int64_t axis = -1) {
    cudnnBackendDescriptor_t pw = Create(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, "pointwise");
    Set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pointwise mode");
    Set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec, "pointwise precision");
    if (axis >= 0) Set(pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis, "pointwise axis");
    Finalize(pw, "pointwise");
    cudnnBackendDescriptor_t op = Create(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, "pointwise op");
    Link(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw, "pointwise op desc");
    Link(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x, "pointwise x");
    if (b) Link(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, b, "pointwise b");
    if (t) Link(op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, t, "pointwise t");
    Link(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y, "pointwise y");
    Finalize(op, "pointwise op");
    ops_.push_back(op);
  }
  void Reduction(cudnnReduceTensorOp_t mode, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
    cudnnBackendDescriptor_t r = Create(CUDNN_BACKEND_REDUCTION_DESCRIPTOR, "reduction");
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    Set(r, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode, "reduction mode");
    Set(r, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &prec, "reduction precision");
    Finalize(r, "reduction");
    cudnnBackendDescriptor_t op = Create(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, "reduction op");
    Link(op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, r, "reduction op desc");
    Link(op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x, "reduction x");
    Link(op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y, "reduction y");
    Finalize(op, "reduction op");
    ops_.push_back(op);
  }
  void Matmul(cudnnBackendDescriptor_t a, cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t c) {
    cudnnBackendDescriptor_t mm = Create(CUDNN_BACKEND_MATMUL_DESCRIPTOR, "matmul");
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    Set(mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &prec, "matmul precision");
    Finalize(mm, "matmul");
    cudnnBackendDescriptor_t op = Create(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, "matmul op");
    Link(op, CUDNN_ATTR_OPERATION_MATMUL_DESC, mm, "matmul op desc");
    Link(op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, a, "matmul a");
    Link(op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, b, "matmul b");
    Link(op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, c, "matmul c");
    Finalize(op, "matmul op");
    ops_.push_back(op);
  }
  void Reshape(cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
    cudnnBackendDescriptor_t op = Create(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, "reshape op");
    Link(op, CUDNN_ATTR_OPERATION_RESHAPE_XDESC, x, "reshape x");
    Link(op, CUDNN_ATTR_OPERATION_RESHAPE_YDESC, y, "reshape y");
    Finalize(op, "reshape op");
    ops_.push_back(op);
  }

  // The operation graph, the heuristics' engine configs in order, and the first plan that finalizes
  // (skipping engines that declare themselves non-deterministic when `deterministic`).
  void BuildPlan(bool deterministic) {
    cudnnBackendDescriptor_t graph = Create(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "operation graph");
    Set(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_, "graph handle");
    Set(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, static_cast<int64_t>(ops_.size()),
        ops_.data(), "graph ops");
    Finalize(graph, "operation graph");
    cudnnBackendDescriptor_t heur = Create(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, "heuristics");
    Link(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph, "heuristics graph");
    const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
    Set(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "heuristics mode");
    Finalize(heur, "heuristics");
    if (!ok()) return;
    int64_t count = 0;
    Check(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                  nullptr),
          "heuristics result count");
    if (!ok()) return;
    if (count == 0) {
      plan_->error = "cuDNN's heuristics offer no engine for the attention graph";
      return;
    }
    std::vector<cudnnBackendDescriptor_t> configs;
    for (int64_t i = 0; i < count; ++i) configs.push_back(Create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, "engine config"));
    Check(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &count,
                                  configs.data()),
          "heuristics results");
    if (!ok()) return;
    std::string rejected;
    for (int64_t i = 0; i < count; ++i) {
      int64_t index = -1;
      bool nondeterministic = false;
      EngineInfo(configs[i], &index, &nondeterministic);
      if (deterministic && nondeterministic) {
        rejected += " engine " + std::to_string(index) + " (non-deterministic)";
        continue;
      }
      auto o = std::make_unique<Owned>();
      if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &o->d) != CUDNN_STATUS_SUCCESS) continue;
      if (cudnnBackendSetAttribute(o->d, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_) !=
              CUDNN_STATUS_SUCCESS ||
          cudnnBackendSetAttribute(o->d, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                   &configs[i]) != CUDNN_STATUS_SUCCESS) {
        continue;
      }
      const cudnnStatus_t st = cudnnBackendFinalize(o->d);
      if (st != CUDNN_STATUS_SUCCESS) {
        rejected += " engine " + std::to_string(index) + " (" + cudnnGetErrorString(st) + ")";
        continue;
      }
      int64_t ws = 0, n = 0;
      Check(cudnnBackendGetAttribute(o->d, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &ws),
            "plan workspace size");
      if (!ok()) return;
      plan_->plan = o->d;
      plan_->workspace = ws;
      plan_->engine = index;
      plan_->descriptors.push_back(std::move(o));
      return;
    }
    plan_->error = "no engine config of cuDNN's " + std::to_string(count) + " finalizes:" + rejected;
  }

 private:
  void Check(cudnnStatus_t st, const char* what) {
    if (st == CUDNN_STATUS_SUCCESS || !ok()) return;
    status_ = st;
    char last[512] = {0};
    cudnnGetLastErrorString(last, sizeof(last));
    plan_->error = std::string("cuDNN ") + what + ": " + cudnnGetErrorString(st) + (last[0] ? std::string(" (") + last + ")" : "");
  }

  void EngineInfo(cudnnBackendDescriptor_t config, int64_t* index, bool* nondeterministic) {
    Owned engine;
    if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &engine.d) != CUDNN_STATUS_SUCCESS) return;
    int64_t n = 0;
    if (cudnnBackendGetAttribute(config, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n,
                                 &engine.d) != CUDNN_STATUS_SUCCESS) {
      return;
    }
    cudnnBackendGetAttribute(engine.d, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, index);
    std::array<cudnnBackendNumericalNote_t, CUDNN_NUMERICAL_NOTE_TYPE_COUNT> notes{};
    int64_t count = 0;
    if (cudnnBackendGetAttribute(engine.d, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                 static_cast<int64_t>(notes.size()), &count, notes.data()) != CUDNN_STATUS_SUCCESS) {
      return;
    }
    for (int64_t i = 0; i < count && i < static_cast<int64_t>(notes.size()); ++i)
      if (notes[i] == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC) *nondeterministic = true;
  }

  cudnnHandle_t handle_;
  Plan* plan_;
  cudnnStatus_t status_ = CUDNN_STATUS_SUCCESS;
  int64_t next_uid_ = kFirstVirtual;
  std::vector<cudnnBackendDescriptor_t> ops_;
};

cudnnDataType_t CudnnType(DType t) { return t == DType::kBF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF; }

// (B, T, H, D) memory seen as (B, H, T, D); `transposed` gives (B, H, D, T) (a matmul's K^T).
Dims4 BhsdDims(int64_t B, int64_t H, int64_t T, int64_t D, bool transposed = false) {
  return transposed ? Dims4{B, H, D, T} : Dims4{B, H, T, D};
}
Dims4 BhsdStrides(int64_t H, int64_t T, int64_t D, bool transposed = false) {
  return transposed ? Dims4{T * H * D, D, 1, H * D} : Dims4{T * H * D, D, H * D, 1};
}
Dims4 RowMajor(Dims4 d) { return {d[1] * d[2] * d[3], d[2] * d[3], d[3], 1}; }

// Scores (B, H, T, S) -> scaled -> [causal select]: returns the masked scores.
cudnnBackendDescriptor_t ScaledMaskedScores(Builder& g, const AttnDims& d, cudnnBackendDescriptor_t s0,
                                            cudnnBackendDescriptor_t scale, cudnnBackendDescriptor_t fill) {
  const Dims4 sd{d.B, d.H, d.T, d.S}, ss = RowMajor(sd);
  cudnnBackendDescriptor_t s1 = g.Virtual(CUDNN_DATA_FLOAT, sd, ss);
  g.Pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, s0, scale, nullptr, s1);
  if (!d.causal) return s1;
  cudnnBackendDescriptor_t row = g.Virtual(CUDNN_DATA_INT32, sd, ss);
  g.Pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, s1, nullptr, nullptr, row, 2);
  cudnnBackendDescriptor_t col = g.Virtual(CUDNN_DATA_INT32, sd, ss);
  g.Pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, s1, nullptr, nullptr, col, 3);
  cudnnBackendDescriptor_t keep = g.Virtual(CUDNN_DATA_BOOLEAN, sd, ss);
  g.Pointwise(CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, row, col, nullptr, keep);
  cudnnBackendDescriptor_t s2 = g.Virtual(CUDNN_DATA_FLOAT, sd, ss);
  g.Pointwise(CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, s1, fill, keep, s2);
  return s2;
}

void BuildForward(Builder& g, const AttnDims& d, DType dtype) {
  const cudnnDataType_t io = CudnnType(dtype);
  auto q = g.Tensor(kQ, io, BhsdDims(d.B, d.H, d.T, d.D), BhsdStrides(d.H, d.T, d.D), false);
  auto kt = g.Tensor(kK, io, BhsdDims(d.B, d.Hkv, d.S, d.D, true), BhsdStrides(d.Hkv, d.S, d.D, true), false);
  auto v = g.Tensor(kV, io, BhsdDims(d.B, d.Hkv, d.S, d.D), BhsdStrides(d.Hkv, d.S, d.D), false);
  auto o = g.Tensor(kO, io, BhsdDims(d.B, d.H, d.T, d.D), BhsdStrides(d.H, d.T, d.D), false);
  const Dims4 rd{d.B, d.H, d.T, 1}, rs{d.H * d.T, d.T, 1, 1};
  auto stats = g.Tensor(kStats, CUDNN_DATA_FLOAT, rd, rs, false);
  auto scale = g.Scalar(kScale);
  auto fill = d.causal ? g.Scalar(kMaskFill) : nullptr;  // only a masked graph has the fill

  const Dims4 sd{d.B, d.H, d.T, d.S}, ss = RowMajor(sd);
  auto s0 = g.Virtual(CUDNN_DATA_FLOAT, sd, ss);
  g.Matmul(q, kt, s0);
  auto s = ScaledMaskedScores(g, d, s0, scale, fill);
  // Softmax with stats = max + log(sum exp(s - max)).
  auto mx = g.Virtual(CUDNN_DATA_FLOAT, rd, rs);
  g.Reduction(CUDNN_REDUCE_TENSOR_MAX, s, mx);
  auto sub = g.Virtual(CUDNN_DATA_FLOAT, sd, ss);
  g.Pointwise(CUDNN_POINTWISE_SUB, CUDNN_DATA_FLOAT, s, mx, nullptr, sub);
  auto e = g.Virtual(CUDNN_DATA_FLOAT, sd, ss);
  g.Pointwise(CUDNN_POINTWISE_EXP, CUDNN_DATA_FLOAT, sub, nullptr, nullptr, e);
  auto sum = g.Virtual(CUDNN_DATA_FLOAT, rd, rs);
  g.Reduction(CUDNN_REDUCE_TENSOR_ADD, e, sum);
  auto lg = g.Virtual(CUDNN_DATA_FLOAT, rd, rs);
  g.Pointwise(CUDNN_POINTWISE_LOG, CUDNN_DATA_FLOAT, sum, nullptr, nullptr, lg);
  g.Pointwise(CUDNN_POINTWISE_ADD, CUDNN_DATA_FLOAT, mx, lg, nullptr, stats);
  auto p = g.Virtual(io, sd, ss);  // bmm2 takes P in the io type
  g.Pointwise(CUDNN_POINTWISE_DIV, CUDNN_DATA_FLOAT, e, sum, nullptr, p);
  g.Matmul(p, v, o);
}

void BuildBackward(Builder& g, const AttnDims& d, DType dtype) {
  const cudnnDataType_t io = CudnnType(dtype);
  const int64_t B = d.B, H = d.H, T = d.T, S = d.S, Hkv = d.Hkv, D = d.D;
  auto q = g.Tensor(kQ, io, BhsdDims(B, H, T, D), BhsdStrides(H, T, D), false);
  auto kt = g.Tensor(kK, io, BhsdDims(B, Hkv, S, D, true), BhsdStrides(Hkv, S, D, true), false);
  auto vt = g.Tensor(kV, io, BhsdDims(B, Hkv, S, D, true), BhsdStrides(Hkv, S, D, true), false);
  auto o = g.Tensor(kO, io, BhsdDims(B, H, T, D), BhsdStrides(H, T, D), false);
  const Dims4 rd{B, H, T, 1}, rs{H * T, T, 1, 1};
  auto stats = g.Tensor(kStats, CUDNN_DATA_FLOAT, rd, rs, false);
  auto dO = g.Tensor(kDO, io, BhsdDims(B, H, T, D), BhsdStrides(H, T, D), false);
  auto dQ = g.Tensor(kDQ, io, BhsdDims(B, H, T, D), BhsdStrides(H, T, D), false);
  auto dK = g.Tensor(kDK, io, BhsdDims(B, Hkv, S, D), BhsdStrides(Hkv, S, D), false);
  auto dV = g.Tensor(kDV, io, BhsdDims(B, Hkv, S, D), BhsdStrides(Hkv, S, D), false);
  auto scale = g.Scalar(kScale);
  auto fill = d.causal ? g.Scalar(kMaskFill) : nullptr;  // only a masked graph has the fill
  auto one = g.Scalar(kOne);

  // softmax_sum = rowsum(dO * O) (the softmax-backward row term).
  auto dOO = g.Virtual(CUDNN_DATA_FLOAT, {B, H, T, D}, {H * T * D, T * D, H * D, 1});
  g.Pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, dO, o, nullptr, dOO);
  auto rowsum = g.Virtual(CUDNN_DATA_FLOAT, rd, rs);
  g.Reduction(CUDNN_REDUCE_TENSOR_ADD, dOO, rowsum);
  auto softmax_sum = g.Virtual(CUDNN_DATA_FLOAT, rd, rs);
  g.Pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, rowsum, one, nullptr, softmax_sum);

  // P = exp(scale Q K^T [masked] - stats); dV = P^T dO (summed over the heads of a group).
  const Dims4 sd{B, H, T, S}, ss = RowMajor(sd);
  const Dims4 td{B, H, S, T}, ts{H * T * S, T * S, 1, S};  // (B, H, S, T) view of a (B, H, T, S) matrix
  auto s0 = g.Virtual(CUDNN_DATA_FLOAT, sd, ss);
  g.Matmul(q, kt, s0);
  auto s = ScaledMaskedScores(g, d, s0, scale, fill);
  auto sub = g.Virtual(CUDNN_DATA_FLOAT, sd, ss);
  g.Pointwise(CUDNN_POINTWISE_SUB, CUDNN_DATA_FLOAT, s, stats, nullptr, sub);
  auto p = g.Virtual(CUDNN_DATA_FLOAT, sd, ss);
  g.Pointwise(CUDNN_POINTWISE_EXP, CUDNN_DATA_FLOAT, sub, nullptr, nullptr, p);
  auto pt = g.Virtual(io, td, ts);
  g.Reshape(p, pt);
  const bool gqa = H != Hkv;
  const Dims4 kvd{B, H, S, D}, kvs = RowMajor(kvd);
  if (!gqa) {
    g.Matmul(pt, dO, dV);
  } else {
    auto dv_heads = g.Virtual(io, kvd, kvs);
    g.Matmul(pt, dO, dv_heads);
    g.Reduction(CUDNN_REDUCE_TENSOR_ADD, dv_heads, dV);
  }

  // dS = scale * P * (dO V^T - softmax_sum); dK = dS^T Q; dQ = dS K.
  auto dp = g.Virtual(CUDNN_DATA_FLOAT, sd, ss);
  g.Matmul(dO, vt, dp);
  auto dp1 = g.Virtual(CUDNN_DATA_FLOAT, sd, ss);
  g.Pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, dp, one, nullptr, dp1);
  auto dp2 = g.Virtual(CUDNN_DATA_FLOAT, sd, ss);
  g.Pointwise(CUDNN_POINTWISE_SUB, CUDNN_DATA_FLOAT, dp1, softmax_sum, nullptr, dp2);
  auto ds0 = g.Virtual(CUDNN_DATA_FLOAT, sd, ss);
  g.Pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, dp2, p, nullptr, ds0);
  auto ds = g.Virtual(CUDNN_DATA_FLOAT, sd, ss);
  g.Pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, ds0, scale, nullptr, ds);
  auto dst = g.Virtual(io, td, ts);
  g.Reshape(ds, dst);
  if (!gqa) {
    g.Matmul(dst, q, dK);
  } else {
    auto dk_heads = g.Virtual(io, kvd, kvs);
    g.Matmul(dst, q, dk_heads);
    g.Reduction(CUDNN_REDUCE_TENSOR_ADD, dk_heads, dK);
  }
  auto k = g.Virtual(CUDNN_DATA_FLOAT, BhsdDims(B, Hkv, S, D), BhsdStrides(Hkv, S, D));
  g.Reshape(kt, k);
  g.Matmul(ds, k, dQ);
}

struct Key {
  int device;
  DType dtype;
  int64_t B, T, H, S, Hkv, D;
  bool causal, backward;
  auto Tie() const { return std::tie(device, dtype, B, T, H, S, Hkv, D, causal, backward); }
  bool operator<(const Key& o) const { return Tie() < o.Tie(); }
};

std::mutex g_mu;
// Plans and handles are never destroyed: they live until the process exits, whatever the order in
// which static objects and backends go away.
std::map<Key, std::shared_ptr<Plan>>& Cache() {
  static auto* cache = new std::map<Key, std::shared_ptr<Plan>>();
  return *cache;
}

// This path's own cuDNN handle per device (created on first use, kept for the process): plans are
// bound to the handle that built them, and a backend's handle may be destroyed and its address
// reused by the next backend's; a private handle also keeps cudnnSetStream away from other users.
cudnnHandle_t HandleFor(int device, std::string* why) {
  static auto* handles = new std::map<int, cudnnHandle_t>();
  auto it = handles->find(device);
  if (it != handles->end()) return it->second;
  cudnnHandle_t h = nullptr;
  const cudnnStatus_t st = cudnnCreate(&h);
  if (st != CUDNN_STATUS_SUCCESS) {
    *why = std::string("cudnnCreate: ") + cudnnGetErrorString(st);
    h = nullptr;
  }
  handles->emplace(device, h);
  return h;
}

// The plan for a case, with the handle it runs on; plan->error says why there is none.
std::shared_ptr<Plan> GetPlan(const AttnDims& d, DType dtype, bool backward, cudnnHandle_t* handle) {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) device = -1;
  const Key key{device, dtype, d.B, d.T, d.H, d.S, d.Hkv, d.D, d.causal, backward};
  std::lock_guard<std::mutex> lock(g_mu);
  std::string why;
  *handle = device < 0 ? nullptr : HandleFor(device, &why);
  auto it = Cache().find(key);
  if (it != Cache().end()) return it->second;
  auto plan = std::make_shared<Plan>();
  if (*handle == nullptr) {
    plan->error = device < 0 ? "no current CUDA device" : why;
    Cache().emplace(key, plan);
    return plan;
  }
  const cudnnHandle_t h = *handle;
  Builder g(h, plan.get());
  if (backward) {
    BuildBackward(g, d, dtype);
  } else {
    BuildForward(g, d, dtype);
  }
  if (g.ok()) g.BuildPlan(/*deterministic=*/backward);
  if (plan->error.empty() && plan->plan == nullptr) plan->error = "cuDNN plan was not built";
  if (!plan->error.empty()) {
    plan->descriptors.clear();
    plan->plan = nullptr;
    ZT_LOG(DEBUG) << "attention: cuDNN " << (backward ? "backward" : "forward") << " unavailable for B=" << d.B
                  << " T=" << d.T << " H=" << d.H << " S=" << d.S << " Hkv=" << d.Hkv << " D=" << d.D
                  << (d.causal ? " causal" : "") << ": " << plan->error;
  } else {
    ZT_LOG(DEBUG) << "attention: cuDNN " << (backward ? "backward" : "forward") << " plan (engine " << plan->engine
                  << ", workspace " << plan->workspace << " bytes) for B=" << d.B << " T=" << d.T << " H=" << d.H
                  << " S=" << d.S << " Hkv=" << d.Hkv << " D=" << d.D << (d.causal ? " causal" : "");
  }
  Cache().emplace(key, plan);
  return plan;
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// uids/ptrs: the device tensors first (`num_device` of them), then the by-value host scalars.
bool Execute(cudnnHandle_t handle, const Plan& plan, std::vector<int64_t> uids, std::vector<void*> ptrs,
             size_t num_device, void* workspace, size_t workspace_bytes, cudaStream_t stream, std::string* why) {
  if (plan.workspace > 0 && static_cast<size_t>(plan.workspace) > workspace_bytes) {
    *why = "cuDNN needs " + std::to_string(plan.workspace) + " workspace bytes, the op provides " +
           std::to_string(workspace_bytes);
    return false;
  }
  for (size_t i = 0; i < num_device; ++i) {
    if (!Aligned16(ptrs[i])) {
      *why = "a tensor is not 16-byte aligned";
      return false;
    }
  }
  static std::mutex exec_mu;  // the handle's stream is per handle: one execution at a time
  std::lock_guard<std::mutex> lock(exec_mu);
  cudnnStatus_t st = cudnnSetStream(handle, stream);
  Owned pack;
  if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack.d);
  const int64_t n = static_cast<int64_t>(uids.size());
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(pack.d, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids.data());
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(pack.d, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs.data());
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(pack.d, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
  if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendFinalize(pack.d);
  if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendExecute(handle, plan.plan, pack.d);
  if (st != CUDNN_STATUS_SUCCESS) {
    char last[512] = {0};
    cudnnGetLastErrorString(last, sizeof(last));
    *why = std::string("cuDNN execute: ") + cudnnGetErrorString(st) + (last[0] ? std::string(" (") + last + ")" : "");
    return false;
  }
  return true;
}

}  // namespace

bool CudnnSupports(const AttnDims& d, DType dtype) {
  if (dtype != DType::kBF16 && dtype != DType::kF16) return false;
  if (d.D % 8 != 0 || d.D > kMaxHeadDim) return false;
  if (d.causal && d.S != d.T) return false;
  if (d.B < 1 || d.T < 1 || d.S < 1 || d.H < 1 || d.Hkv < 1) return false;
  return true;
}

bool CudnnForward(const AttnDims& d, DType dtype, const CudnnFwdArgs& a, void* workspace, size_t workspace_bytes,
                  cudaStream_t stream, std::string* why) {
  if (!CudnnSupports(d, dtype)) {
    *why = "outside cuDNN's scope";
    return false;
  }
  cudnnHandle_t handle = nullptr;
  std::shared_ptr<Plan> plan = GetPlan(d, dtype, false, &handle);
  if (!plan->error.empty()) {
    *why = plan->error;
    return false;
  }
  float scale = d.scale;
  std::vector<int64_t> uids = {kQ, kK, kV, kO, kStats, kScale};
  std::vector<void*> ptrs = {const_cast<void*>(a.q), const_cast<void*>(a.k), const_cast<void*>(a.v), a.out, a.lse,
                             &scale};
  if (d.causal) {  // the fill value is a graph tensor only when there is a mask
    uids.push_back(kMaskFill);
    ptrs.push_back(&plan->mask_fill);
  }
  return Execute(handle, *plan, std::move(uids), std::move(ptrs), 5, workspace, workspace_bytes, stream, why);
}

bool CudnnBackward(const AttnDims& d, DType dtype, const CudnnBwdArgs& a, void* workspace, size_t workspace_bytes,
                   cudaStream_t stream, std::string* why) {
  if (!CudnnSupports(d, dtype)) {
    *why = "outside cuDNN's scope";
    return false;
  }
  cudnnHandle_t handle = nullptr;
  std::shared_ptr<Plan> plan = GetPlan(d, dtype, true, &handle);
  if (!plan->error.empty()) {
    *why = plan->error;
    return false;
  }
  float scale = d.scale;
  std::vector<int64_t> uids = {kQ, kK, kV, kO, kStats, kDO, kDQ, kDK, kDV, kScale, kOne};
  std::vector<void*> ptrs = {const_cast<void*>(a.q), const_cast<void*>(a.k), const_cast<void*>(a.v),
                             const_cast<void*>(a.out), const_cast<float*>(a.lse), const_cast<void*>(a.dout),
                             a.dq, a.dk, a.dv, &scale, &plan->one};
  if (d.causal) {  // the fill value is a graph tensor only when there is a mask
    uids.push_back(kMaskFill);
    ptrs.push_back(&plan->mask_fill);
  }
  return Execute(handle, *plan, std::move(uids), std::move(ptrs), 9, workspace, workspace_bytes, stream, why);
}

int64_t CudnnWorkspaceBytes(const AttnDims& d, DType dtype, bool backward, std::string* why) {
  if (!CudnnSupports(d, dtype)) {
    *why = "outside cuDNN's scope";
    return -1;
  }
  cudnnHandle_t handle = nullptr;
  std::shared_ptr<Plan> plan = GetPlan(d, dtype, backward, &handle);
  if (!plan->error.empty()) {
    *why = plan->error;
    return -1;
  }
  return plan->workspace;
}

}  // namespace zt::attn
