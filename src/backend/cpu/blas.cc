// OpenBLAS sgemm wrapper.
#include "backend/cpu/blas.h"

#include <cblas.h>

#include <climits>

#include "core/check.h"

namespace zt {

void Sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc) {
  ZT_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX) << "sgemm too large for BLAS ints";
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

}  // namespace zt
