// The transpose reduction of kernels/transpose_plan.h.
#include "kernels/transpose_plan.h"

#include "core/check.h"

namespace zt {

TransposePlan MakeTransposePlan(const Shape& in, std::span<const int64_t> perm) {
  constexpr int kMaxRank = TransposePlan::kMaxRank;
  int r = in.rank();
  ZT_CHECK(r <= kMaxRank && static_cast<int>(perm.size()) == r) << "transpose of " << in;
  int map[kMaxRank];  // input dim -> index among kept (size != 1) input dims, or -1
  int64_t kept_dims[kMaxRank];
  int nk = 0;
  for (int k = 0; k < r; ++k) {
    if (in[k] != 1) {
      map[k] = nk;
      kept_dims[nk++] = in[k];
    } else {
      map[k] = -1;
    }
  }
  int64_t kept_stride[kMaxRank];
  int64_t s = 1;
  for (int k = nk - 1; k >= 0; --k) {
    kept_stride[k] = s;
    s *= kept_dims[k];
  }
  // Groups of output positions whose (kept) input dims are consecutive: [start, end).
  int gstart[kMaxRank], gend[kMaxRank];
  int ng = 0;
  for (int j = 0; j < r; ++j) {
    int k = map[perm[j]];
    if (k < 0) continue;
    if (ng > 0 && gend[ng - 1] == k) {
      ++gend[ng - 1];
    } else {
      gstart[ng] = k;
      gend[ng] = k + 1;
      ++ng;
    }
  }
  TransposePlan p;
  p.rank = ng;
  for (int g = 0; g < ng; ++g) {
    int64_t n = 1;
    for (int k = gstart[g]; k < gend[g]; ++k) n *= kept_dims[k];
    p.dims[g] = n;
    p.src_stride[g] = kept_stride[gend[g] - 1];
  }
  return p;
}

}  // namespace zt
