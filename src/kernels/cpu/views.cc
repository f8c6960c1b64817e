// CPU kernels: reshape, transpose, split, concat. All of them move whole elements as bytes, so
// results are exact for every dtype and independent of the thread count.
#include "kernels/cpu/views.h"

#include <algorithm>
#include <cstring>

#include "backend/cpu/parallel.h"
#include "ir/ops/views.h"
#include "kernels/kernel.h"
#include "kernels/transpose_plan.h"

namespace zt {
namespace {

constexpr int kMaxRank = ir::kMaxTransposeRank;
constexpr int64_t kCopyBlock = 1 << 16;  // bytes per parallel work item of a row copy
constexpr int64_t kTile = 32;            // tile edge of the 2-D blocked transpose

// dst row r = src row r for r < rows, each row_bytes long, rows strided by *_stride bytes.
// Work items are (row, block of at most kCopyBlock bytes), so one long row is still split.
void CopyRows(char* dst, int64_t dst_stride, const char* src, int64_t src_stride, int64_t rows, int64_t row_bytes) {
  if (rows <= 0 || row_bytes <= 0) return;
  int64_t blocks = (row_bytes + kCopyBlock - 1) / kCopyBlock;
  int64_t grain = std::max<int64_t>(1, kCopyBlock / row_bytes);
  ParallelFor(rows * blocks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; ++w) {
      int64_t r = w / blocks, b0 = (w % blocks) * kCopyBlock;
      int64_t n = std::min(kCopyBlock, row_bytes - b0);
      std::memcpy(dst + r * dst_stride + b0, src + r * src_stride + b0, static_cast<size_t>(n));
    }
  });
}

// General case (the innermost output dim is not the innermost input dim): 2-D tiles over output
// dim q (input stride 1) and the last output dim (output stride 1), looped over the other dims.
template <typename E>
void TransposeTiled(const TransposePlan& p, const E* src, E* dst) {
  int r = p.rank;
  int last = r - 1;
  int q = -1;
  for (int j = 0; j < r; ++j)
    if (p.src_stride[j] == 1) q = j;
  ZT_CHECK(q >= 0 && q < last);
  int64_t out_stride[kMaxRank];
  int64_t s = 1;
  for (int j = r - 1; j >= 0; --j) {
    out_stride[j] = s;
    s *= p.dims[j];
  }
  int64_t outer = 1;
  for (int j = 0; j < r; ++j)
    if (j != q && j != last) outer *= p.dims[j];
  int64_t tq = (p.dims[q] + kTile - 1) / kTile, tl = (p.dims[last] + kTile - 1) / kTile;
  int64_t sl = p.src_stride[last], dq = out_stride[q];
  ParallelFor(outer * tq * tl, 4, [&](int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; ++w) {
      int64_t il = w % tl, iq = (w / tl) % tq, o = w / (tl * tq);
      int64_t sbase = 0, dbase = 0;
      for (int j = r - 1; j >= 0; --j) {
        if (j == q || j == last) continue;
        int64_t c = o % p.dims[j];
        o /= p.dims[j];
        sbase += c * p.src_stride[j];
        dbase += c * out_stride[j];
      }
      int64_t a0 = iq * kTile, a1 = std::min(p.dims[q], a0 + kTile);
      int64_t l0 = il * kTile, l1 = std::min(p.dims[last], l0 + kTile);
      for (int64_t a = a0; a < a1; ++a) {
        const E* sp = src + sbase + a;
        E* dp = dst + dbase + a * dq;
        for (int64_t l = l0; l < l1; ++l) dp[l] = sp[l * sl];
      }
    }
  });
}

// Innermost output dim is the innermost input dim: copy contiguous runs of it.
void TransposeRuns(const TransposePlan& p, const char* src, char* dst, size_t esize) {
  int r = p.rank;
  int64_t run = p.dims[r - 1];
  int64_t run_bytes = run * static_cast<int64_t>(esize);
  int64_t rows = 1;
  for (int j = 0; j < r - 1; ++j) rows *= p.dims[j];
  int64_t grain = std::max<int64_t>(1, kCopyBlock / std::max<int64_t>(run_bytes, 1));
  ParallelFor(rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      int64_t o = row, soff = 0;
      for (int j = r - 2; j >= 0; --j) {
        soff += (o % p.dims[j]) * p.src_stride[j];
        o /= p.dims[j];
      }
      std::memcpy(dst + row * run_bytes, src + soff * static_cast<int64_t>(esize), static_cast<size_t>(run_bytes));
    }
  });
}

Status ReshapeKernel(const KernelContext& c) {
  reshape_fwd(c.inputs[0], c.outputs[0]);
  return OkStatus();
}
Status TransposeKernel(const KernelContext& c) {
  transpose_fwd(c.inputs[0], c.attrs.GetInts("perm"), c.outputs[0]);
  return OkStatus();
}
int AxisOf(const KernelContext& c, int rank) {
  int64_t axis = c.attrs.GetInt("axis");
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}
Status SplitKernel(const KernelContext& c) {
  split_fwd(c.inputs[0], AxisOf(c, c.inputs[0].shape.rank()), c.outputs);
  return OkStatus();
}
Status ConcatKernel(const KernelContext& c) {
  concat_fwd(c.inputs, AxisOf(c, c.outputs[0].shape.rank()), c.outputs[0]);
  return OkStatus();
}

}  // namespace

void reshape_fwd(const Tensor& x, const Tensor& out) {
  ZT_CHECK_EQ(x.nbytes(), out.nbytes());
  if (x.data != out.data && x.nbytes()) std::memcpy(out.data, x.data, x.nbytes());
}

void transpose_fwd(const Tensor& x, std::span<const int64_t> perm, const Tensor& out) {
  ZT_CHECK(x.dtype == out.dtype && x.numel() == out.numel());
  ZT_CHECK(x.data != out.data || x.numel() == 0) << "transpose cannot run in place";
  for (size_t j = 0; j < perm.size(); ++j) ZT_CHECK_EQ(out.shape[static_cast<int>(j)], x.shape[static_cast<int>(perm[j])]);
  if (x.numel() == 0) return;
  TransposePlan p = MakeTransposePlan(x.shape, perm);
  size_t esize = DTypeSize(x.dtype);
  const char* src = static_cast<const char*>(x.data);
  char* dst = static_cast<char*>(out.data);
  if (p.rank <= 1) {  // the data order does not change
    CopyRows(dst, 0, src, 0, 1, static_cast<int64_t>(x.nbytes()));
    return;
  }
  if (p.src_stride[p.rank - 1] == 1) {
    TransposeRuns(p, src, dst, esize);
    return;
  }
  switch (esize) {
    case 1: TransposeTiled(p, reinterpret_cast<const uint8_t*>(src), reinterpret_cast<uint8_t*>(dst)); break;
    case 2: TransposeTiled(p, reinterpret_cast<const uint16_t*>(src), reinterpret_cast<uint16_t*>(dst)); break;
    case 4: TransposeTiled(p, reinterpret_cast<const uint32_t*>(src), reinterpret_cast<uint32_t*>(dst)); break;
    case 8: TransposeTiled(p, reinterpret_cast<const uint64_t*>(src), reinterpret_cast<uint64_t*>(dst)); break;
    default: ZT_CHECK(false) << "transpose: element size " << esize;
  }
}

void split_fwd(const Tensor& x, int axis, std::span<const Tensor> outs) {
  const Shape& s = x.shape;
  ZT_CHECK(axis >= 0 && axis < s.rank());
  int64_t esize = static_cast<int64_t>(DTypeSize(x.dtype));
  int64_t outer = s.Product(0, axis);
  int64_t inner_bytes = s.Product(axis + 1, s.rank()) * esize;
  int64_t row_bytes = s[axis] * inner_bytes;
  int64_t off = 0;
  for (const Tensor& o : outs) {
    ZT_CHECK(o.dtype == x.dtype && o.shape.rank() == s.rank());
    int64_t piece = o.shape[axis] * inner_bytes;
    CopyRows(static_cast<char*>(o.data), piece, static_cast<const char*>(x.data) + off, row_bytes, outer, piece);
    off += piece;
  }
  ZT_CHECK_EQ(off, row_bytes) << "split pieces do not cover " << s;
}

void concat_fwd(std::span<const Tensor> xs, int axis, const Tensor& out) {
  const Shape& s = out.shape;
  ZT_CHECK(axis >= 0 && axis < s.rank());
  int64_t esize = static_cast<int64_t>(DTypeSize(out.dtype));
  int64_t outer = s.Product(0, axis);
  int64_t inner_bytes = s.Product(axis + 1, s.rank()) * esize;
  int64_t row_bytes = s[axis] * inner_bytes;
  int64_t off = 0;
  for (const Tensor& x : xs) {
    ZT_CHECK(x.dtype == out.dtype && x.shape.rank() == s.rank());
    int64_t piece = x.shape[axis] * inner_bytes;
    CopyRows(static_cast<char*>(out.data) + off, row_bytes, static_cast<const char*>(x.data), piece, outer, piece);
    off += piece;
  }
  ZT_CHECK_EQ(off, row_bytes) << "concat inputs do not fill " << s;
}

void RegisterViewCpuKernels(KernelRegistry& r) {
  r.Register("reshape", DeviceKind::kCPU, ReshapeKernel);
  r.Register("transpose", DeviceKind::kCPU, TransposeKernel);
  r.Register("split", DeviceKind::kCPU, SplitKernel);
  r.Register("concat", DeviceKind::kCPU, ConcatKernel);
}

}  // namespace zt
