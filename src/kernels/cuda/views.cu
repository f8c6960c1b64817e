// CUDA kernels of the views family: reshape, transpose, split, concat. Like the CPU kernels they
// move whole elements as bytes, so results are bit-identical to the CPU for every dtype.
// Copies use the widest unit (16, 8, 4, 2 or 1 bytes) that divides every address, stride and row
// length involved; a transpose is first reduced as on the CPU (size-1 dims dropped, dims that stay
// adjacent merged) and then runs as contiguous runs (the innermost dim is kept) or as 32x32
// shared-memory tiles (coalesced reads along the input's innermost dim and writes along the
// output's).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "ir/ops/views.h"
#include "kernels/cuda/registry.h"
#include "kernels/cuda/vec.cuh"
#include "kernels/kernel.h"
#include "kernels/transpose_plan.h"

namespace zt {
namespace {

constexpr int kMaxRank = ir::kMaxTransposeRank;
constexpr int kThreads = 256;
constexpr int kTile = 32;
constexpr int kTileRows = 8;  // threads per tile column: each handles kTile / kTileRows rows

// The largest power of two <= 16 dividing every value.
int UnitFor(std::initializer_list<uint64_t> values) {
  uint64_t acc = 16;
  for (uint64_t v : values) acc |= v;
  return static_cast<int>(acc & (~acc + 1));  // lowest set bit; at most 16
}

// dst + r*dst_stride <- src + r*src_stride, units_per_row units of U each, for r < rows.
template <typename U>
__global__ void copy_rows_kernel(char* dst, int64_t dst_stride, const char* src, int64_t src_stride, int64_t rows,
                                 int64_t units_per_row) {
  int64_t total = rows * units_per_row;
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t w = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; w < total; w += step) {
    int64_t r = w / units_per_row, u = w - r * units_per_row;
    reinterpret_cast<U*>(dst + r * dst_stride)[u] = reinterpret_cast<const U*>(src + r * src_stride)[u];
  }
}

template <typename F>
void DispatchUnit(int unit, F&& f) {
  switch (unit) {
    case 16: f(uint4{}); return;
    case 8: f(uint2{}); return;
    case 4: f(uint32_t{}); return;
    case 2: f(uint16_t{}); return;
    default: f(uint8_t{}); return;
  }
}

void CopyRows(void* dst, int64_t dst_stride, const void* src, int64_t src_stride, int64_t rows, int64_t row_bytes,
              cudaStream_t s) {
  if (rows <= 0 || row_bytes <= 0) return;
  if (rows == 1 || (dst_stride == row_bytes && src_stride == row_bytes)) {
    ZT_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(rows * row_bytes), cudaMemcpyDeviceToDevice, s));
    return;
  }
  int unit = UnitFor({reinterpret_cast<uint64_t>(dst), reinterpret_cast<uint64_t>(src), static_cast<uint64_t>(dst_stride),
                      static_cast<uint64_t>(src_stride), static_cast<uint64_t>(row_bytes)});
  int64_t upr = row_bytes / unit;
  DispatchUnit(unit, [&](auto tag) {
    using U = decltype(tag);
    copy_rows_kernel<U><<<dev::GridFor(rows * upr, kThreads), kThreads, 0, s>>>(
        static_cast<char*>(dst), dst_stride, static_cast<const char*>(src), src_stride, rows, upr);
  });
  ZT_CUDA_CHECK(cudaGetLastError());
}

// Innermost output dim = innermost input dim: output row `row` (all dims but the last) is a
// contiguous run of run_units units read from the input at the row's offset.
struct RunsArgs {
  int outer_rank = 0;                     // dims before the run
  int64_t dims[kMaxRank];                 // of the outer dims
  int64_t src_stride_bytes[kMaxRank];     // of the outer dims
};

template <typename U>
__global__ void transpose_runs_kernel(char* dst, const char* src, RunsArgs a, int64_t rows, int64_t run_units) {
  int64_t total = rows * run_units;
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t w = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; w < total; w += step) {
    int64_t row = w / run_units, u = w - row * run_units;
    int64_t o = row, soff = 0;
    for (int j = a.outer_rank - 1; j >= 0; --j) {
      int64_t d = a.dims[j];
      int64_t q = o / d;
      soff += (o - q * d) * a.src_stride_bytes[j];
      o = q;
    }
    reinterpret_cast<U*>(dst)[w] = reinterpret_cast<const U*>(src + soff)[u];
  }
}

// General case: tiles over output dim q (input stride 1) and the last output dim (output stride 1).
struct TileArgs {
  int rank = 0, q = 0;
  int64_t dims[kMaxRank];
  int64_t src_stride[kMaxRank];
  int64_t out_stride[kMaxRank];
  int64_t tq = 0, tl = 0, tiles = 0;
};

template <typename E>
__global__ void transpose_tiled_kernel(const E* __restrict__ src, E* __restrict__ dst, TileArgs p) {
  __shared__ E tile[kTile][kTile + 1];
  const int last = p.rank - 1;
  const int64_t nq = p.dims[p.q], nl = p.dims[last];
  const int64_t sl = p.src_stride[last], dq = p.out_stride[p.q];
  for (int64_t t = blockIdx.x; t < p.tiles; t += gridDim.x) {
    int64_t il = t % p.tl, iq = (t / p.tl) % p.tq, o = t / (p.tl * p.tq);
    int64_t sbase = 0, dbase = 0;
    for (int j = p.rank - 1; j >= 0; --j) {
      if (j == p.q || j == last) continue;
      int64_t c = o % p.dims[j];
      o /= p.dims[j];
      sbase += c * p.src_stride[j];
      dbase += c * p.out_stride[j];
    }
    int64_t a0 = iq * kTile, l0 = il * kTile;
    // Read: consecutive threads walk q (input stride 1).
    for (int ly = threadIdx.y; ly < kTile; ly += kTileRows) {
      int64_t a = a0 + threadIdx.x, l = l0 + ly;
      if (a < nq && l < nl) tile[ly][threadIdx.x] = src[sbase + a + l * sl];
    }
    __syncthreads();
    // Write: consecutive threads walk the last output dim (output stride 1).
    for (int ay = threadIdx.y; ay < kTile; ay += kTileRows) {
      int64_t a = a0 + ay, l = l0 + threadIdx.x;
      if (a < nq && l < nl) dst[dbase + a * dq + l] = tile[threadIdx.x][ay];
    }
    __syncthreads();
  }
}

template <typename E>
void LaunchTiled(const TransposePlan& p, const void* src, void* dst, cudaStream_t s) {
  TileArgs a;
  a.rank = p.rank;
  int last = p.rank - 1;
  a.q = -1;
  for (int j = 0; j < p.rank; ++j) {
    a.dims[j] = p.dims[j];
    a.src_stride[j] = p.src_stride[j];
    if (p.src_stride[j] == 1) a.q = j;
  }
  ZT_CHECK(a.q >= 0 && a.q < last);
  int64_t st = 1;
  for (int j = p.rank - 1; j >= 0; --j) {
    a.out_stride[j] = st;
    st *= p.dims[j];
  }
  int64_t outer = 1;
  for (int j = 0; j < p.rank; ++j)
    if (j != a.q && j != last) outer *= p.dims[j];
  a.tq = (p.dims[a.q] + kTile - 1) / kTile;
  a.tl = (p.dims[last] + kTile - 1) / kTile;
  a.tiles = outer * a.tq * a.tl;
  unsigned blocks = static_cast<unsigned>(std::min<int64_t>(a.tiles, 65535 * 8));
  transpose_tiled_kernel<E><<<blocks, dim3(kTile, kTileRows), 0, s>>>(static_cast<const E*>(src), static_cast<E*>(dst), a);
  ZT_CUDA_CHECK(cudaGetLastError());
}

void transpose_fwd(const Tensor& x, std::span<const int64_t> perm, const Tensor& out, cudaStream_t s) {
  ZT_CHECK(x.dtype == out.dtype && x.numel() == out.numel());
  ZT_CHECK(x.data != out.data || x.numel() == 0) << "transpose cannot run in place";
  for (size_t j = 0; j < perm.size(); ++j)
    ZT_CHECK_EQ(out.shape[static_cast<int>(j)], x.shape[static_cast<int>(perm[j])]);
  if (x.numel() == 0) return;
  TransposePlan p = MakeTransposePlan(x.shape, perm);
  int64_t esize = static_cast<int64_t>(DTypeSize(x.dtype));
  if (p.rank <= 1) {  // the data order does not change
    ZT_CUDA_CHECK(cudaMemcpyAsync(out.data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, s));
    return;
  }
  if (p.src_stride[p.rank - 1] == 1) {
    RunsArgs a;
    a.outer_rank = p.rank - 1;
    int64_t rows = 1;
    for (int j = 0; j < p.rank - 1; ++j) {
      a.dims[j] = p.dims[j];
      a.src_stride_bytes[j] = p.src_stride[j] * esize;
      rows *= p.dims[j];
    }
    int64_t run_bytes = p.dims[p.rank - 1] * esize;
    // Every source row offset is a multiple of run_bytes (the run is the innermost input dim).
    int unit = UnitFor({reinterpret_cast<uint64_t>(out.data), reinterpret_cast<uint64_t>(x.data),
                        static_cast<uint64_t>(run_bytes)});
    int64_t run_units = run_bytes / unit;
    DispatchUnit(unit, [&](auto tag) {
      using U = decltype(tag);
      transpose_runs_kernel<U><<<dev::GridFor(rows * run_units, kThreads), kThreads, 0, s>>>(
          static_cast<char*>(out.data), static_cast<const char*>(x.data), a, rows, run_units);
    });
    ZT_CUDA_CHECK(cudaGetLastError());
    return;
  }
  switch (esize) {
    case 1: LaunchTiled<uint8_t>(p, x.data, out.data, s); break;
    case 2: LaunchTiled<uint16_t>(p, x.data, out.data, s); break;
    case 4: LaunchTiled<uint32_t>(p, x.data, out.data, s); break;
    case 8: LaunchTiled<uint64_t>(p, x.data, out.data, s); break;
    default: ZT_CHECK(false) << "transpose: element size " << esize;
  }
}

void split_fwd(const Tensor& x, int axis, std::span<const Tensor> outs, cudaStream_t s) {
  const Shape& sh = x.shape;
  ZT_CHECK(axis >= 0 && axis < sh.rank());
  int64_t esize = static_cast<int64_t>(DTypeSize(x.dtype));
  int64_t outer = sh.Product(0, axis);
  int64_t inner_bytes = sh.Product(axis + 1, sh.rank()) * esize;
  int64_t row_bytes = sh[axis] * inner_bytes;
  int64_t off = 0;
  for (const Tensor& o : outs) {
    ZT_CHECK(o.dtype == x.dtype && o.shape.rank() == sh.rank());
    int64_t piece = o.shape[axis] * inner_bytes;
    CopyRows(o.data, piece, static_cast<const char*>(x.data) + off, row_bytes, outer, piece, s);
    off += piece;
  }
  ZT_CHECK_EQ(off, row_bytes) << "split pieces do not cover " << sh;
}

void concat_fwd(std::span<const Tensor> xs, int axis, const Tensor& out, cudaStream_t s) {
  const Shape& sh = out.shape;
  ZT_CHECK(axis >= 0 && axis < sh.rank());
  int64_t esize = static_cast<int64_t>(DTypeSize(out.dtype));
  int64_t outer = sh.Product(0, axis);
  int64_t inner_bytes = sh.Product(axis + 1, sh.rank()) * esize;
  int64_t row_bytes = sh[axis] * inner_bytes;
  int64_t off = 0;
  for (const Tensor& x : xs) {
    ZT_CHECK(x.dtype == out.dtype && x.shape.rank() == sh.rank());
    int64_t piece = x.shape[axis] * inner_bytes;
    CopyRows(static_cast<char*>(out.data) + off, row_bytes, x.data, piece, outer, piece, s);
    off += piece;
  }
  ZT_CHECK_EQ(off, row_bytes) << "concat inputs do not fill " << sh;
}

int AxisOf(const KernelContext& c, int rank) {
  int64_t axis = c.attrs.GetInt("axis");
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

Status ReshapeKernel(const KernelContext& c) {
  const Tensor &x = c.inputs[0], &out = c.outputs[0];
  ZT_CHECK_EQ(x.nbytes(), out.nbytes());
  if (x.data != out.data && x.nbytes())  // planned as a view, normally nothing to do
    ZT_CUDA_CHECK(cudaMemcpyAsync(out.data, x.data, x.nbytes(), cudaMemcpyDeviceToDevice, CudaStreamOf(c.stream)));
  return OkStatus();
}
Status TransposeKernel(const KernelContext& c) {
  transpose_fwd(c.inputs[0], c.attrs.GetInts("perm"), c.outputs[0], CudaStreamOf(c.stream));
  return OkStatus();
}
Status SplitKernel(const KernelContext& c) {
  split_fwd(c.inputs[0], AxisOf(c, c.inputs[0].shape.rank()), c.outputs, CudaStreamOf(c.stream));
  return OkStatus();
}
Status ConcatKernel(const KernelContext& c) {
  concat_fwd(c.inputs, AxisOf(c, c.outputs[0].shape.rank()), c.outputs[0], CudaStreamOf(c.stream));
  return OkStatus();
}

}  // namespace

void RegisterViewCudaKernels(KernelRegistry& r) {
  r.Register("reshape", DeviceKind::kCUDA, ReshapeKernel);
  r.Register("transpose", DeviceKind::kCUDA, TransposeKernel);
  r.Register("split", DeviceKind::kCUDA, SplitKernel);
  r.Register("concat", DeviceKind::kCUDA, ConcatKernel);
}

}  // namespace zt
