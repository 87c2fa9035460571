// CPU matrix products: batched row-major GEMM on OpenBLAS (sgemm / dgemm), one call per batch
// entry; a batch stride of 0 shares that operand across the batch; leading dimensions and two
// batch levels for the strided views of matmul_view.
#include <cblas.h>

#include <algorithm>
#include <limits>

#include "tensor/cpu/backend.h"
#include "tensor/cpu/parallel.h"

namespace sdlora::cpu {
namespace {

void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha,
               const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha,
               const double* a, int lda, const double* b, int ldb, double beta, double* c,
               int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

int blas_dim(int64_t v, const GemmPlan& p) {
  SDLORA_CHECK(v <= std::numeric_limits<int>::max(), "cpu gemm: dimension ", v,
               " too large for BLAS (m ", p.m, ", n ", p.n, ", k ", p.k, ")");
  return static_cast<int>(std::max<int64_t>(v, 1));
}

}  // namespace

void CpuBackend::gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmPlan& p) {
  dispatch_float(a.dtype(), "gemm", [&](auto tag) {
    using T = decltype(tag);
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* cp = c.data<T>();
    const T alpha = static_cast<T>(p.alpha), beta = static_cast<T>(p.beta);
    if (p.m == 0 || p.n == 0) return;
    const int64_t ldc64 = p.ld_c();
    if (p.k == 0) {  // empty sum: C = beta C (beta 0 does not read C, as in BLAS)
      for (int64_t o = 0; o < p.outer; ++o)
        for (int64_t bi = 0; bi < p.batch; ++bi)
          for (int64_t i = 0; i < p.m; ++i) {
            T* row = cp + o * p.outer_c + bi * p.stride_c + i * ldc64;
            for (int64_t j = 0; j < p.n; ++j) row[j] = beta == T(0) ? T(0) : beta * row[j];
          }
      return;
    }
    // Row-major leading dimensions: A is stored (m, k), or (k, m) when transposed; B likewise;
    // a strided plan gives its own row pitches.
    const int lda = blas_dim(p.ld_a(), p);
    const int ldb = blas_dim(p.ld_b(), p);
    const int ldc = blas_dim(ldc64, p);
    const CBLAS_TRANSPOSE ta = p.trans_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = p.trans_b ? CblasTrans : CblasNoTrans;
    for (int64_t o = 0; o < p.outer; ++o) {
      for (int64_t bi = 0; bi < p.batch; ++bi) {
        blas_gemm(ta, tb, blas_dim(p.m, p), blas_dim(p.n, p), blas_dim(p.k, p), alpha,
                  ap + o * p.outer_a + bi * p.stride_a, lda, bp + o * p.outer_b + bi * p.stride_b,
                  ldb, beta, cp + o * p.outer_c + bi * p.stride_c, ldc);
      }
    }
  });
}

}  // namespace sdlora::cpu
