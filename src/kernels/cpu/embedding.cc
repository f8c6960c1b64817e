// CPU embedding kernels: gather (memcpy of rows, any storage type) and scatter-add backward.
// Invariant: no read or write through an id that is outside [0, V); backward sums are
// deterministic (fixed position order per element, no atomics).
#include "kernels/cpu/embedding.h"

#include <algorithm>
#include <cstring>

#include "backend/cpu/parallel.h"
#include "core/mem_category.h"
#include "ir/ops/embedding.h"
#include "kernels/cpu/dispatch.h"
#include "kernels/kernel.h"

namespace zt {
namespace {

// Columns accumulated at once in the backward (an f32 block on the stack).
constexpr int64_t kColBlock = 256;

inline int64_t CheckedId(const Tensor& ids, int64_t p, int64_t v) {
  int64_t id = GetIndex(ids, p);
  ZT_CHECK(id >= 0 && id < v) << "embedding: id " << id << " at position " << p
                              << " is outside [0, V = " << v << "); the token data or vocabulary size is wrong";
  return id;
}

Status EmbeddingKernel(const KernelContext& c) {
  embedding_fwd(c.inputs[0], c.inputs[1], c.outputs[0]);
  return OkStatus();
}

Status EmbeddingBwdKernel(const KernelContext& c) {
  embedding_bwd(c.inputs[0], c.inputs[1], c.outputs[0], c.workspace);
  return OkStatus();
}

}  // namespace

void embedding_fwd(const Tensor& ids, const Tensor& table, const Tensor& out) {
  ZT_CHECK(table.shape.rank() == 2 && IsFloating(table.dtype)) << "table " << table.shape;
  ZT_CHECK(out.dtype == table.dtype);
  int64_t v = table.shape[0], ch = table.shape[1];
  int64_t n = ids.numel();
  ZT_CHECK_EQ(out.numel(), n * ch);
  size_t row_bytes = static_cast<size_t>(ch) * DTypeSize(table.dtype);
  const char* src = static_cast<const char*>(table.data);
  char* dst = static_cast<char*>(out.data);
  ParallelFor(n, std::max<int64_t>(1, 16384 / std::max<int64_t>(ch, 1)), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      int64_t id = CheckedId(ids, p, v);
      std::memcpy(dst + static_cast<size_t>(p) * row_bytes, src + static_cast<size_t>(id) * row_bytes, row_bytes);
    }
  });
}

void embedding_bwd(const Tensor& ids, const Tensor& dout, const Tensor& dtable, const Tensor& workspace) {
  ZT_CHECK(dtable.shape.rank() == 2 && dtable.dtype == dout.dtype) << "dtable " << dtable.shape;
  int64_t v = dtable.shape[0], ch = dtable.shape[1];
  int64_t n = ids.numel();
  ZT_CHECK_EQ(dout.numel(), n * ch);
  ZT_CHECK_GE(workspace.nbytes(), ir::EmbeddingBwdWorkspaceBytes(n, v));
  // Stable counting sort of positions by id: offsets[r]..offsets[r+1] index positions of row r.
  auto* offsets = static_cast<int64_t*>(workspace.data);  // (V + 1)
  auto* order = reinterpret_cast<int64_t*>(static_cast<char*>(workspace.data) +
                                           AlignedBytes(static_cast<size_t>(v + 1) * sizeof(int64_t)));  // (N)
  std::fill(offsets, offsets + v + 1, int64_t{0});
  for (int64_t p = 0; p < n; ++p) ++offsets[CheckedId(ids, p, v) + 1];
  for (int64_t r = 0; r < v; ++r) offsets[r + 1] += offsets[r];
  // offsets[r] is used as the fill cursor of row r, then restored by the shift below.
  for (int64_t p = 0; p < n; ++p) order[offsets[GetIndex(ids, p)]++] = p;
  for (int64_t r = v; r > 0; --r) offsets[r] = offsets[r - 1];
  offsets[0] = 0;

  DispatchFloat(dout.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* g = static_cast<const T*>(dout.data);
    T* dt = static_cast<T*>(dtable.data);
    ParallelFor(v, std::max<int64_t>(1, 4096 / std::max<int64_t>(ch, 1)), [&](int64_t rb, int64_t re) {
      float acc[kColBlock];
      for (int64_t r = rb; r < re; ++r) {
        T* row = dt + r * ch;
        for (int64_t c0 = 0; c0 < ch; c0 += kColBlock) {
          int64_t w = std::min(kColBlock, ch - c0);
          std::fill(acc, acc + w, 0.0f);
          for (int64_t k = offsets[r]; k < offsets[r + 1]; ++k) {
            const T* src = g + order[k] * ch + c0;
            for (int64_t j = 0; j < w; ++j) acc[j] += ToF32(src[j]);
          }
          StoreF32(acc, row + c0, w);
        }
      }
    });
  });
}

void RegisterEmbeddingCpuKernels(KernelRegistry& r) {
  r.Register("embedding", DeviceKind::kCPU, EmbeddingKernel);
  r.Register("embedding_bwd", DeviceKind::kCPU, EmbeddingBwdKernel);
}

}  // namespace zt
