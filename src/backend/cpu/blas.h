// Sgemm: C = alpha * op(A) @ op(B) + beta * C, row-major, through OpenBLAS's cblas_sgemm.
// op(X) is X or X^T. M, N, K are the sizes of op(A) (M x K), op(B) (K x N) and C (M x N).
#pragma once

#include <cstdint>

namespace zt {

void Sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc);

}  // namespace zt
