// CUDA kernel of matmul (semantics in ir/ops/matmul.cc, reference in kernels/cpu/matmul.cc) through
// cuBLASLt: f32 accumulation always (CUBLAS_COMPUTE_32F, never TF32), one rounding to the output
// type, bias added in f32 by the BIAS epilogue (as the CPU adds it before its one rounding).
// Row-major to column-major: row-major C[M,N] = op(a) op(b) is column-major C^T[N,M] =
// op(b)^T op(a)^T, so cuBLASLt's A is our b and its B is our a, with the same transpose flags.
// Batches are strided (stride 0 for a shared rank-2 operand); a shared b with batched a and no
// trans_a is one GEMM over batch*M rows, as on the CPU.
// Workspace: the op's CUDA rule (ir/ops/matmul.cc, CudaMatmulWorkspaceBytes; a program planned for
// the CPU gives the CPU's rule instead: 0 bytes for f32) covers padded copies and 32 MiB for
// cuBLASLt. Problems of >= 1 GFLOP whose operand rows are not 16-byte aligned (GPT-2's vocab
// of 50257 columns, views at odd offsets) first copy those operands to padded, aligned buffers in
// it (cuBLASLt's unaligned kernels ran ~7x slower on the GPT-2 logits); cuBLASLt then gets
// min(the rest, 32 MiB). Without a workspace there are no split-K algorithms (~2x slower weight
// gradients with K = 16384). For 16-bit outputs only split-K reductions in
// f32 (CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE) are allowed, so partial sums are never rounded to
// 16 bits. Every cuBLASLt split-K scheme is deterministic, and the algorithm is chosen once per
// problem (shape, dtypes, transposes, batch, strides, alignments, workspace) and cached, so
// results are run-to-run identical.
// The cuBLASLt path (RunMatmulLt, matmul_lt.h) also serves the fused epilogues of
// kernels/cuda/matmul_epilogue.cu: GELU_AUX(_BIAS) (aux = the pre-activation), DGELU (aux read) and
// BGRADA/BGRADB (bias gradient, summed over K). Their extra pointers (aux, bias gradient) are set
// on the descriptor, and the epilogue, aux alignment and aux leading dimension are part of the
// algorithm cache key (the heuristic reads those pointers' alignment from their values).
// Invariant: the host never synchronizes or reads device memory; if cuBLASLt has no algorithm
// for a problem, a simple tiled kernel computes it (counted: matmul.cuh) rather than failing.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "core/logging.h"
#include "kernels/cuda/matmul.cuh"
#include "kernels/cuda/matmul_lt.h"
#include "kernels/cuda/registry.h"
#include "kernels/cuda/vec.cuh"
#include "kernels/kernel.h"

namespace zt {
namespace {

constexpr size_t kMaxWorkspace = size_t{32} << 20;
constexpr uintptr_t kWorkspaceAlign = 256;

// Problems at least this large (flops) get padded copies of misaligned operands (see MatmulKernel).
constexpr double kPadMinFlops = 1e9;

std::atomic<int64_t> g_fallbacks{0};
std::atomic<int64_t> g_padded{0};
std::atomic<bool> g_force_fallback{false};

// The column-major problem handed to cuBLASLt (see the file comment): D[N, M'] = op(A) op(B).
struct Gemm {
  DType dtype;
  bool trans_a, trans_b;              // cuBLAS ops on A (our b) and B (our a)
  uint64_t a_rows, a_cols, b_rows, b_cols, d_rows, d_cols;
  int64_t lda, ldb, ldd;
  int64_t stride_a, stride_b, stride_d;  // elements; 0: shared by every batch
  int32_t batch;
  const void* a;
  const void* b;
  const void* bias;  // nullptr: no bias
  void* d;
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;  // BIAS when bias (set by RunMatmulLt)
  const void* aux = nullptr;  // GELU_AUX*: written; DGELU: read. Laid out as D, leading dim ld_aux
  int64_t ld_aux = 0;
  void* bias_grad = nullptr;  // BGRADA / BGRADB: the bias gradient (written)
};

cudaDataType_t CudaType(DType t) {
  switch (t) {
    case DType::kF32: return CUDA_R_32F;
    case DType::kBF16: return CUDA_R_16BF;
    case DType::kF16: return CUDA_R_16F;
    default: break;
  }
  ZT_CHECK(false) << "matmul: no cuBLASLt type for " << DTypeName(t);
  return CUDA_R_32F;
}

// Largest power of two (<= 256) dividing the address and, for batches, the byte stride.
uint32_t AlignmentOf(const void* p, int64_t stride_elems, size_t elem) {
  uintptr_t bits = reinterpret_cast<uintptr_t>(p) | 256u;
  if (stride_elems != 0) bits |= static_cast<uintptr_t>(stride_elems) * elem;
  return static_cast<uint32_t>(bits & (~bits + 1));
}

std::string LtError(cublasStatus_t st, const std::string& what) {
  return what + ": " + cublasLtGetStatusName(st) + " (" + cublasLtGetStatusString(st) + ")";
}

#define ZT_LT_CHECK(expr)                                                       \
  do {                                                                          \
    cublasStatus_t zt_lt_st_ = (expr);                                          \
    ZT_CHECK(zt_lt_st_ == CUBLAS_STATUS_SUCCESS) << LtError(zt_lt_st_, #expr);  \
  } while (0)

// Descriptors of one problem, in place (no heap allocation).
struct Descs {
  cublasLtMatmulDescOpaque_t op_storage;
  cublasLtMatrixLayoutOpaque_t a_storage, b_storage, d_storage;
  cublasLtMatmulDesc_t op = &op_storage;
  cublasLtMatrixLayout_t a = &a_storage, b = &b_storage, d = &d_storage;

  Descs(const Descs&) = delete;
  explicit Descs(const Gemm& g) {
    ZT_LT_CHECK(cublasLtMatmulDescInit(op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t tb = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    ZT_LT_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    ZT_LT_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    if (g.epilogue != CUBLASLT_EPILOGUE_DEFAULT) {
      ZT_LT_CHECK(
          cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &g.epilogue, sizeof(g.epilogue)));
    }
    // The bias (read) or the bias gradient (written): D's type (the default), i.e. the op's dtype.
    // Batch stride 0: one bias for all.
    const void* vec = g.bias ? g.bias : g.bias_grad;
    if (vec) ZT_LT_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &vec, sizeof(vec)));
    if (g.aux) {
      // Aux type: D's (the default), i.e. the op's dtype, as the pre-activation value is.
      ZT_LT_CHECK(
          cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &g.aux, sizeof(g.aux)));
      ZT_LT_CHECK(
          cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &g.ld_aux, sizeof(g.ld_aux)));
    }
    cudaDataType_t t = CudaType(g.dtype);
    Layout(a, t, g.a_rows, g.a_cols, g.lda, g.batch, g.stride_a);
    Layout(b, t, g.b_rows, g.b_cols, g.ldb, g.batch, g.stride_b);
    Layout(d, t, g.d_rows, g.d_cols, g.ldd, g.batch, g.stride_d);
  }

  static void Layout(cublasLtMatrixLayout_t l, cudaDataType_t t, uint64_t rows, uint64_t cols, int64_t ld,
                     int32_t batch, int64_t stride) {
    ZT_LT_CHECK(cublasLtMatrixLayoutInit(l, t, rows, cols, ld));
    if (batch > 1) {
      ZT_LT_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof(batch)));
      ZT_LT_CHECK(
          cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
    }
  }
};

// Algorithm cache: one heuristic call per distinct problem.
using AlgoKey = std::array<int64_t, 26>;
struct AlgoEntry {
  bool found = false;
  cublasLtMatmulAlgo_t algo;
  size_t workspace = 0;
};

std::mutex g_cache_mu;
std::map<AlgoKey, AlgoEntry>& Cache() {
  static auto* m = new std::map<AlgoKey, AlgoEntry>();
  return *m;
}

AlgoKey KeyOf(int device, const Gemm& g, const uint32_t align[5], size_t ws) {
  return {device, static_cast<int64_t>(g.dtype), g.trans_a, g.trans_b,
          static_cast<int64_t>(g.a_rows), static_cast<int64_t>(g.a_cols), static_cast<int64_t>(g.b_rows),
          static_cast<int64_t>(g.b_cols), static_cast<int64_t>(g.d_rows), static_cast<int64_t>(g.d_cols),
          g.lda, g.ldb, g.ldd, g.stride_a, g.stride_b, g.stride_d, g.batch, g.bias != nullptr,
          align[0], align[1], align[2], align[3], static_cast<int64_t>(ws), static_cast<int64_t>(g.epilogue),
          align[4], g.ld_aux};
}

const char* EpilogueName(cublasLtEpilogue_t e) {
  switch (e) {
    case CUBLASLT_EPILOGUE_GELU_AUX: return " epilogue GELU_AUX";
    case CUBLASLT_EPILOGUE_GELU_AUX_BIAS: return " epilogue GELU_AUX_BIAS";
    case CUBLASLT_EPILOGUE_DGELU: return " epilogue DGELU";
    case CUBLASLT_EPILOGUE_BGRADA: return " epilogue BGRADA";
    case CUBLASLT_EPILOGUE_BGRADB: return " epilogue BGRADB";
    default: return "";
  }
}

std::string Describe(const Gemm& g) {
  return std::string("cuBLASLt ") + DTypeName(g.dtype) + " D[" + std::to_string(g.d_rows) + "x" +
         std::to_string(g.d_cols) + "] = A[" + std::to_string(g.a_rows) + "x" + std::to_string(g.a_cols) +
         (g.trans_a ? "]^T" : "]") + " B[" + std::to_string(g.b_rows) + "x" + std::to_string(g.b_cols) +
         (g.trans_b ? "]^T" : "]") + " batch " + std::to_string(g.batch) + (g.bias ? " +bias" : "") +
         EpilogueName(g.epilogue);
}

// What the caller runs instead when cuBLASLt cannot (for the warnings).
const char* FallbackName(const Gemm& g) {
  bool plain = g.epilogue == CUBLASLT_EPILOGUE_DEFAULT || g.epilogue == CUBLASLT_EPILOGUE_BIAS;
  return plain ? "using the fallback kernel" : "using the unfused kernels";
}

AlgoEntry FindAlgo(cublasLtHandle_t h, int device, const Gemm& g, const Descs& d, size_t ws) {
  size_t elem = DTypeSize(g.dtype);
  const void* vec = g.bias ? g.bias : g.bias_grad;
  uint32_t align[5] = {AlignmentOf(g.a, g.stride_a, elem), AlignmentOf(g.b, g.stride_b, elem),
                       AlignmentOf(g.d, g.stride_d, elem), vec ? AlignmentOf(vec, 0, elem) : 0u,
                       g.aux ? AlignmentOf(g.aux, 0, elem) : 0u};
  AlgoKey key = KeyOf(device, g, align, ws);
  std::lock_guard<std::mutex> lock(g_cache_mu);
  auto it = Cache().find(key);
  if (it != Cache().end()) return it->second;

  cublasLtMatmulPreferenceOpaque_t pref_storage;
  cublasLtMatmulPreference_t pref = &pref_storage;
  ZT_LT_CHECK(cublasLtMatmulPreferenceInit(pref));
  uint64_t max_ws = ws;
  ZT_LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws,
                                                   sizeof(max_ws)));
  ZT_LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align[0],
                                                   sizeof(align[0])));
  ZT_LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align[1],
                                                   sizeof(align[1])));
  ZT_LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align[2],
                                                   sizeof(align[2])));
  ZT_LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align[2],
                                                   sizeof(align[2])));
  if (g.dtype != DType::kF32) {
    // Split-K partial sums in f32 only: a 16-bit output must be rounded once, at the end.
    uint32_t mask = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
    ZT_LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &mask,
                                                     sizeof(mask)));
  }
  cublasLtMatmulHeuristicResult_t result = {};
  int returned = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(h, d.op, d.a, d.b, d.d, d.d, pref, 1, &result, &returned);
  AlgoEntry e;
  if (st == CUBLAS_STATUS_SUCCESS && returned > 0 && result.state == CUBLAS_STATUS_SUCCESS &&
      result.workspaceSize <= ws) {
    e.found = true;
    e.algo = result.algo;
    e.workspace = result.workspaceSize;
  } else {
    ZT_LOG(WARNING) << "matmul: " << Describe(g) << " (alignments " << align[0] << "/" << align[1] << "/"
                    << align[2] << ", workspace " << ws << " B): no cuBLASLt algorithm ("
                    << (st == CUBLAS_STATUS_SUCCESS ? std::string("none returned") : LtError(st, "heuristic"))
                    << "); " << FallbackName(g);
  }
  Cache().emplace(key, e);
  return e;
}

// Fallback: 16x16 output tiles, K in steps of 16 through shared memory, f32 accumulation.
// Row-major semantics directly: out[z][i][j] = sum_k opa(i,k) opb(k,j) (+ bias[j]).
constexpr int kTile = 16;

template <typename T>
__global__ void matmul_fallback_kernel(const T* a, const T* b, const T* bias, T* out, int64_t m, int64_t n, int64_t k,
                                       bool ta, bool tb, int64_t stride_a, int64_t stride_b, int64_t batch) {
  __shared__ float as[kTile][kTile + 1];
  __shared__ float bs[kTile][kTile + 1];
  int64_t row_tiles = (m + kTile - 1) / kTile;
  int64_t j = static_cast<int64_t>(blockIdx.x) * kTile + threadIdx.x;
  // Every thread of a block runs the same iterations, so the barriers below are uniform.
  for (int64_t z = blockIdx.z; z < batch; z += gridDim.z) {
    const T* pa = a + z * stride_a;
    const T* pb = b + z * stride_b;
    for (int64_t rt = blockIdx.y; rt < row_tiles; rt += gridDim.y) {
      int64_t i = rt * kTile + threadIdx.y;
      float acc = 0.0f;
      for (int64_t k0 = 0; k0 < k; k0 += kTile) {
        int64_t ai = rt * kTile + threadIdx.y, ak = k0 + threadIdx.x;
        as[threadIdx.y][threadIdx.x] = (ai < m && ak < k) ? dev::ToF32(ta ? pa[ak * m + ai] : pa[ai * k + ak]) : 0.0f;
        int64_t bk = k0 + threadIdx.y, bj = static_cast<int64_t>(blockIdx.x) * kTile + threadIdx.x;
        bs[threadIdx.y][threadIdx.x] = (bk < k && bj < n) ? dev::ToF32(tb ? pb[bj * k + bk] : pb[bk * n + bj]) : 0.0f;
        __syncthreads();
#pragma unroll
        for (int q = 0; q < kTile; ++q) acc += as[threadIdx.y][q] * bs[q][threadIdx.x];
        __syncthreads();
      }
      if (i < m && j < n) {
        if (bias) acc += dev::ToF32(bias[j]);
        out[(z * m + i) * n + j] = dev::FromF32<T>(acc);
      }
    }
  }
}

// Row-by-row copy between pitches: a block per row (grid-stride), threads across the row, so
// reads and writes are coalesced whatever the pitches' alignment.
template <typename E>
__global__ void pitched_copy_kernel(const E* src, int64_t src_pitch, E* dst, int64_t dst_pitch, int64_t width,
                                    int64_t height) {
  for (int64_t r = blockIdx.x; r < height; r += gridDim.x) {
    const E* from = src + r * src_pitch;
    E* into = dst + r * dst_pitch;
    for (int64_t c = threadIdx.x; c < width; c += blockDim.x) into[c] = from[c];
  }
}

// A row-major operand in device memory: `height` rows (every batch stacked) of `width`
// elements, `pitch` elements from one row to the next.
struct RowMajor {
  const void* data;
  int64_t height, width, pitch;

  bool Aligned(size_t elem) const {
    return (reinterpret_cast<uintptr_t>(data) & 15u) == 0 && (static_cast<size_t>(pitch) * elem) % 16 == 0;
  }
  int64_t PaddedPitch(size_t elem) const {
    int64_t per16 = static_cast<int64_t>(16 / elem);
    return (width + per16 - 1) / per16 * per16;
  }
  size_t PaddedBytes(size_t elem) const {
    size_t b = static_cast<size_t>(height) * static_cast<size_t>(PaddedPitch(elem)) * elem;
    return (b + kWorkspaceAlign - 1) & ~(kWorkspaceAlign - 1);
  }
  // The same shape with a 16-byte aligned pitch, at *cursor (advanced past it).
  RowMajor PaddedAt(uintptr_t* cursor, size_t elem) const {
    RowMajor r{reinterpret_cast<void*>(*cursor), height, width, PaddedPitch(elem)};
    *cursor += PaddedBytes(elem);
    return r;
  }
  // Copies the width x height elements into `to` (same shape, any pitch), on the stream. Our
  // kernel, not cudaMemcpy2DAsync: that one crawls on pitches that are not 4-byte multiples
  // (GPT-2's 50257-wide logits: ~10 ms per 1.6 GB copy on an H200, measured).
  cudaError_t CopyTo(const RowMajor& to, size_t elem, cudaStream_t s) const {
    unsigned blocks = static_cast<unsigned>(height < 65535 ? height : 65535);
    if (blocks == 0 || width == 0) return cudaSuccess;
    switch (elem) {
      case 2:
        pitched_copy_kernel<<<blocks, 512, 0, s>>>(static_cast<const uint16_t*>(data), pitch,
                                                   static_cast<uint16_t*>(const_cast<void*>(to.data)), to.pitch,
                                                   width, height);
        break;
      case 4:
        pitched_copy_kernel<<<blocks, 512, 0, s>>>(static_cast<const uint32_t*>(data), pitch,
                                                   static_cast<uint32_t*>(const_cast<void*>(to.data)), to.pitch,
                                                   width, height);
        break;
      default:
        return cudaMemcpy2DAsync(const_cast<void*>(to.data), static_cast<size_t>(to.pitch) * elem, data,
                                 static_cast<size_t>(pitch) * elem, static_cast<size_t>(width) * elem,
                                 static_cast<size_t>(height), cudaMemcpyDeviceToDevice, s);
    }
    return cudaGetLastError();
  }
};

// The row-major problem of a matmul (see ir/ops/matmul.cc): out [batch.., m, n].
struct MatmulDims {
  int64_t m, n, k, batch_a, batch_b, batch;
};

MatmulDims DimsOf(const Tensor& A, const Tensor& B, const Tensor& out, bool ta, bool tb) {
  const Shape& as = A.shape;
  const Shape& bs = B.shape;
  return {ta ? as[-1] : as[-2],
          tb ? bs[-2] : bs[-1],
          ta ? as[-2] : as[-1],
          as.Product(0, as.rank() - 2),
          bs.Product(0, bs.rank() - 2),
          out.shape.Product(0, out.shape.rank() - 2)};
}

Status MatmulKernel(const KernelContext& c) {
  const Tensor& A = c.inputs[0];
  const Tensor& B = c.inputs[1];
  const Tensor& out = c.outputs[0];
  const void* bias = c.inputs.size() == 3 ? c.inputs[2].data : nullptr;
  bool ta = c.attrs.GetBool("trans_a"), tb = c.attrs.GetBool("trans_b");
  ZT_CHECK(A.dtype == B.dtype && A.dtype == out.dtype);
  if (out.numel() == 0) return OkStatus();
  cuda_lt::MatmulCall call;
  call.a = &A;
  call.b = &B;
  call.bias = bias;
  call.out = &out;
  call.trans_a = ta;
  call.trans_b = tb;
  ZT_ASSIGN_OR_RETURN(bool done, cuda_lt::RunMatmulLt(c, call));
  if (done) return OkStatus();

  // k == 0 (out = bias or 0, no GEMM to run), forced, or no cuBLASLt algorithm.
  g_fallbacks.fetch_add(1);
  const MatmulDims md = DimsOf(A, B, out, ta, tb);
  const int64_t m = md.m, n = md.n, k = md.k, batch = md.batch;
  int64_t stride_a = md.batch_a == 1 ? 0 : m * k;
  int64_t stride_b = md.batch_b == 1 ? 0 : k * n;
  ZT_CHECK_LE((n + kTile - 1) / kTile, int64_t{0x7fffffff});
  int64_t row_tiles = (m + kTile - 1) / kTile;
  dim3 grid(static_cast<unsigned>((n + kTile - 1) / kTile), static_cast<unsigned>(row_tiles < 65535 ? row_tiles : 65535),
            static_cast<unsigned>(batch < 65535 ? batch : 65535));
  dim3 block(kTile, kTile);
  cudaStream_t s = CudaStreamOf(c.stream);
  dev::DispatchFloat(out.dtype, [&](auto tag) {
    using T = decltype(tag);
    matmul_fallback_kernel<T><<<grid, block, 0, s>>>(static_cast<const T*>(A.data), static_cast<const T*>(B.data),
                                                     static_cast<const T*>(bias), static_cast<T*>(out.data), m, n, k,
                                                     ta, tb, stride_a, stride_b, batch);
    ZT_CUDA_CHECK(cudaGetLastError());
  });
  return OkStatus();
}

// The cuBLASLt epilogue of a call (in the column-major problem our b is cuBLASLt's A: a bias
// gradient over our b is BGRADA, over our a BGRADB).
cublasLtEpilogue_t LtEpilogueOf(const cuda_lt::MatmulCall& call) {
  using cuda_lt::Epilogue;
  switch (call.epilogue) {
    case Epilogue::kNone: return call.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    case Epilogue::kGeluAux: return call.bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
    case Epilogue::kDGelu: return CUBLASLT_EPILOGUE_DGELU;
    case Epilogue::kBiasGradA: return CUBLASLT_EPILOGUE_BGRADB;
    case Epilogue::kBiasGradB: return CUBLASLT_EPILOGUE_BGRADA;
  }
  return CUBLASLT_EPILOGUE_DEFAULT;
}

bool Aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

namespace cuda_lt {

StatusOr<bool> RunMatmulLt(const KernelContext& c, const MatmulCall& call) {
  const Tensor& A = *call.a;
  const Tensor& B = *call.b;
  const Tensor& out = *call.out;
  const bool ta = call.trans_a, tb = call.trans_b;
  ZT_CHECK(A.dtype == B.dtype && A.dtype == out.dtype);
  const MatmulDims md = DimsOf(A, B, out, ta, tb);
  const int64_t m = md.m, n = md.n, k = md.k, batch = md.batch;
  const int64_t batch_a = md.batch_a, batch_b = md.batch_b;
  const Shape& as = A.shape;
  const Shape& bs = B.shape;
  const bool epilogue = call.epilogue != Epilogue::kNone;
  const bool uses_aux = call.epilogue == Epilogue::kGeluAux || call.epilogue == Epilogue::kDGelu;
  const bool bias_grad = call.epilogue == Epilogue::kBiasGradA || call.epilogue == Epilogue::kBiasGradB;
  ZT_CHECK(!uses_aux || call.aux != nullptr) << "matmul epilogue without its aux matrix";
  ZT_CHECK(!bias_grad || (call.bias_grad != nullptr && call.bias == nullptr && ta && !tb && as.rank() == 2 &&
                          bs.rank() == 2))
      << "bias-gradient epilogue: a^T b of rank-2 operands, no bias";
  ZT_CHECK(call.epilogue != Epilogue::kDGelu || call.bias == nullptr) << "DGELU takes no bias";
  if (g_force_fallback.load() || k == 0 || out.numel() == 0) return false;
  if (uses_aux && (n % 8 != 0 || !Aligned16(call.aux))) return false;  // EPILOGUE_AUX_LD = n
  if (bias_grad && !Aligned16(call.bias_grad)) return false;
  cudaStream_t s = CudaStreamOf(c.stream);

  size_t elem = DTypeSize(out.dtype);
  // Operands as the row-major memory they are: height rows (batches stacked) of width elements.
  RowMajor ra{A.data, batch_a * as[-2], as[-1], as[-1]};
  RowMajor rb{B.data, batch_b * bs[-2], bs[-1], bs[-1]};
  RowMajor rd{out.data, batch * m, n, n};

  // The workspace: 256-byte aligned. Large problems with a misaligned operand (a row length
  // that is not a multiple of 16 bytes, e.g. GPT-2's vocabulary of 50257, or a view at an odd
  // offset) get 16-byte aligned padded copies carved from it first, because cuBLASLt's kernels
  // for unaligned rows are several times slower; cuBLASLt gets min(the rest, 32 MiB). An
  // epilogue's aux matrix would need a padded copy too: those problems take the caller's
  // fallback, whose plain matmul pads.
  uintptr_t base = reinterpret_cast<uintptr_t>(c.workspace.data);
  size_t bytes = c.workspace.data ? c.workspace.nbytes() : 0;
  uintptr_t cursor = (base + kWorkspaceAlign - 1) & ~(kWorkspaceAlign - 1);
  uintptr_t limit = base + bytes;
  double flops = 2.0 * static_cast<double>(batch) * m * n * k;
  bool pad_a = false, pad_b = false, pad_d = false;
  if (flops >= kPadMinFlops) {
    pad_a = !ra.Aligned(elem);
    pad_b = !rb.Aligned(elem);
    pad_d = !rd.Aligned(elem);
    if (epilogue && (pad_a || pad_b || pad_d)) return false;
    size_t need = (pad_a ? ra.PaddedBytes(elem) : 0) + (pad_b ? rb.PaddedBytes(elem) : 0) +
                  (pad_d ? rd.PaddedBytes(elem) : 0);
    if (need == 0 || cursor + need > limit) pad_a = pad_b = pad_d = false;
  }
  RowMajor pa = ra, pb = rb, pd = rd;
  if (pad_a) pa = ra.PaddedAt(&cursor, elem);
  if (pad_b) pb = rb.PaddedAt(&cursor, elem);
  if (pad_d) pd = rd.PaddedAt(&cursor, elem);
  size_t ws = cursor < limit ? static_cast<size_t>(limit - cursor) : 0;
  ws = ws < kMaxWorkspace ? ws & ~(size_t{kWorkspaceAlign} - 1) : kMaxWorkspace;
  void* ws_ptr = ws ? reinterpret_cast<void*>(cursor) : nullptr;

  Gemm g;
  g.dtype = out.dtype;
  g.trans_a = tb;
  g.trans_b = ta;
  g.a = pb.data;
  g.b = pa.data;
  g.bias = call.bias;
  g.d = const_cast<void*>(pd.data);
  int64_t rows = m;  // of the row-major output per GEMM
  g.batch = static_cast<int32_t>(batch);
  if (batch_b == 1 && batch_a == batch && !ta) {  // shared b: one GEMM over batch*m rows
    rows = batch * m;
    g.batch = 1;
  }
  ZT_CHECK_LE(batch, int64_t{0x7fffffff});
  if (epilogue && g.batch != 1) return false;  // no aux / bias-gradient batch strides
  g.a_rows = tb ? k : n;  // = b's row length
  g.a_cols = tb ? n : k;
  g.lda = pb.pitch;
  g.b_rows = ta ? rows : k;  // = a's row length
  g.b_cols = ta ? k : rows;
  g.ldb = pa.pitch;
  g.d_rows = n;
  g.d_cols = rows;
  g.ldd = pd.pitch;
  g.stride_a = batch_b == 1 ? 0 : bs[-2] * pb.pitch;
  g.stride_b = batch_a == 1 ? 0 : as[-2] * pa.pitch;
  g.stride_d = m * pd.pitch;
  if (g.batch == 1) g.stride_a = g.stride_b = g.stride_d = 0;  // unused; keeps alignments honest
  g.epilogue = LtEpilogueOf(call);
  if (uses_aux) {
    g.aux = call.aux;
    g.ld_aux = n;  // laid out as out (never padded on this path)
  }
  g.bias_grad = call.bias_grad;

  auto& backend = static_cast<CudaBackend&>(c.backend);
  cublasLtHandle_t h = backend.cublaslt();
  Descs d(g);
  AlgoEntry e = FindAlgo(h, backend.device(), g, d, ws);
  if (!e.found) return false;
  // Padded copies once an algorithm is known (they write only the workspace).
  if (pad_a) ZT_CUDA_CHECK(ra.CopyTo(pa, elem, s));
  if (pad_b) ZT_CUDA_CHECK(rb.CopyTo(pb, elem, s));
  const float alpha = 1.0f, beta = 0.0f;
  cublasStatus_t st =
      cublasLtMatmul(h, d.op, &alpha, g.a, d.a, g.b, d.b, &beta, g.d, d.d, g.d, d.d, &e.algo, ws_ptr, ws, s);
  if (st == CUBLAS_STATUS_SUCCESS) {
    if (pad_a || pad_b || pad_d) g_padded.fetch_add(1);
    if (pad_d) ZT_CUDA_CHECK(pd.CopyTo(rd, elem, s));
    return true;
  }
  if (st != CUBLAS_STATUS_NOT_SUPPORTED && st != CUBLAS_STATUS_INVALID_VALUE) {
    return Internal("matmul: " + LtError(st, Describe(g)));
  }
  ZT_LOG(WARNING) << "matmul: " << LtError(st, Describe(g)) << "; " << FallbackName(g);
  return false;
}

}  // namespace cuda_lt

int64_t MatmulCudaFallbackCount() { return g_fallbacks.load(); }
int64_t MatmulCudaPaddedCount() { return g_padded.load(); }
void SetMatmulCudaForceFallback(bool force) { g_force_fallback.store(force); }
int64_t MatmulCudaCachedAlgos() {
  std::lock_guard<std::mutex> lock(g_cache_mu);
  return static_cast<int64_t>(Cache().size());
}

void RegisterMatmulCudaKernels(KernelRegistry& r) { r.Register("matmul", DeviceKind::kCUDA, MatmulKernel); }

}  // namespace zt
