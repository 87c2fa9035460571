// The AVX2 + FMA loops of tensor/cpu/vmath.h over SLEEF's 8-lane float and 4-lane double
// functions. Built with -mavx2 -mfma (tensor/CMakeLists.txt); vmath.cpp calls them only on
// processors that have both.
#include "tensor/cpu/vmath_isa.h"

#if defined(SDLORA_VMATH_X86) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <sleef.h>

#include "tensor/cpu/vmath.h"
#include "tensor/cpu/vmath_loops.h"

namespace sdlora::cpu::avx2 {
namespace {

// Phi(x) = 0.5 erfc(-x / sqrt 2). Where every lane is at least -2 the same function as
// 0.5 (1 + erf(x / sqrt 2)) is used: SLEEF's erf is about a quarter cheaper than its erfc, and
// there 1 + erf loses at most 6e-8 (one ulp of erf near -0.95) to cancellation.
__m256 phi(__m256 v) {
  const __m256 t = _mm256_mul_ps(v, _mm256_set1_ps(static_cast<float>(kInvSqrt2)));
  const __m256 half = _mm256_set1_ps(0.5f);
  if (_mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_set1_ps(-2.0f), _CMP_LT_OQ)) == 0)
    return _mm256_mul_ps(half, _mm256_add_ps(_mm256_set1_ps(1.0f), Sleef_erff8_u10avx2(t)));
  return _mm256_mul_ps(half, Sleef_erfcf8_u15avx2(_mm256_sub_ps(_mm256_setzero_ps(), t)));
}

}  // namespace

// x Phi(x)
void gelu_f32(const float* x, float* y, int64_t n) {
  vector_loop<8>(x, static_cast<const float*>(nullptr), y, n,
                 [&](const float* xi, const float*, float* yi) {
                   const __m256 v = _mm256_loadu_ps(xi);
                   _mm256_storeu_ps(yi, _mm256_mul_ps(v, phi(v)));
                 });
}

// dy (Phi(x) + x phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
void gelu_backward_f32(const float* x, const float* dy, float* dx, int64_t n) {
  const __m256 neg_half = _mm256_set1_ps(-0.5f);
  const __m256 inv_sqrt_2pi = _mm256_set1_ps(static_cast<float>(kInvSqrt2Pi));
  vector_loop<8>(x, dy, dx, n, [&](const float* xi, const float* dyi, float* dxi) {
    const __m256 v = _mm256_loadu_ps(xi);
    const __m256 cdf = phi(v);
    const __m256 e = Sleef_expf8_u10avx2(_mm256_mul_ps(_mm256_mul_ps(neg_half, v), v));
    const __m256 pdf = _mm256_mul_ps(inv_sqrt_2pi, e);
    _mm256_storeu_ps(dxi, _mm256_mul_ps(_mm256_loadu_ps(dyi), _mm256_fmadd_ps(v, pdf, cdf)));
  });
}

void exp_f64(const double* x, double* y, int64_t n) {
  vector_loop<4>(x, static_cast<const double*>(nullptr), y, n,
                 [](const double* xi, const double*, double* yi) {
                   _mm256_storeu_pd(yi, Sleef_expd4_u10avx2(_mm256_loadu_pd(xi)));
                 });
}

}  // namespace sdlora::cpu::avx2
#endif
