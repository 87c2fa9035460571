// The AVX2 + FMA loops of tensor/cpu/vmath.h over SLEEF's 8-lane float and 4-lane double
// functions. Built with -mavx2 -mfma (tensor/CMakeLists.txt); vmath.cpp calls them only on
// processors that have both.
#include "tensor/cpu/vmath_isa.h"

#if defined(SDLORA_VMATH_X86) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <sleef.h>

#include <limits>

#include "tensor/cpu/vmath.h"
#include "tensor/cpu/vmath_loops.h"

namespace sdlora::cpu::avx2 {
namespace {

constexpr float kExpTaylor[] = {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f,
                                0.5f,          1.0f,          1.0f};

// exp(x) for x <= 88 (0 below -87, where float's normal range ends): x = k ln 2 + r with |r| <= ln
// 2 / 2 (ln 2 in two parts, so r is exact to about 1e-11), exp(r) by its Taylor series to r^7 / 7!
// (truncation below 6e-9 relative), 2^k put into the exponent bits. Within about one float ulp,
// like SLEEF's 1-ulp expf, at a third of its cost on the machines measured (docs/performance.md).
__m256 exp_f32x8(__m256 in) {
  const __m256 low = _mm256_set1_ps(-87.0f);
  const __m256 x = _mm256_max_ps(in, low);
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  for (float c : kExpTaylor) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
  const __m256i scale =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(_mm256_cmp_ps(in, low, _CMP_LT_OQ),
                          _mm256_mul_ps(p, _mm256_castsi256_ps(scale)));
}

// Phi(x) = 0.5 erfc(-x / sqrt 2) from the Chebyshev-fitted form of erfc (Numerical Recipes'
// erfcc, fractional error below 1.2e-7 everywhere): with u = |x| / sqrt 2 and t = 1 / (1 + u / 2),
//   erfc(u) = t exp(-u^2 + P(t)),  P a degree-9 polynomial,
// and erfc(-u) = 2 - erfc(u). One division, one exp and nine FMAs per 8 lanes: about three times
// cheaper than SLEEF's erf or erfc (which dominated the CPU step's GELU, forward and backward),
// within the float32 op tests' tolerances of the double-precision reference (float rounding of
// P and of the exponent adds a few 1e-8 where Phi's relative error matters, |x| < 2). exp is
// exp_f32x8 above.
// u^2 = x^2 / 2 is taken exactly as hi + lo (an FMA gives x^2's rounding error), so the
// exponent's only rounding is the sum's; exp(-u^2) alone, which the derivative needs, is returned
// through `gauss` (the lo part folded in to first order).
struct PhiParts {
  __m256 cdf;    // Phi(x)
  __m256 gauss;  // exp(-x^2 / 2)
};

template <bool kWantGauss>
PhiParts phi_parts(__m256 x) {
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  // Past |x| = 20 Phi is 0 or 1 and exp(-x^2 / 2) 0 in float; the clamp keeps x^2 finite (an
  // infinite x would make lo NaN). A NaN x gives a finite Phi here; the callers multiply by x.
  const __m256 v = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-20.0f)), _mm256_set1_ps(20.0f));
  const __m256 x2 = _mm256_mul_ps(v, v);
  const __m256 hi = _mm256_mul_ps(x2, half);                                  // exact scaling
  const __m256 lo = _mm256_mul_ps(_mm256_fmsub_ps(v, v, x2), half);           // x^2's rounding
  const __m256 u = _mm256_mul_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v),  // |x| / sqrt 2
                                 _mm256_set1_ps(static_cast<float>(kInvSqrt2)));
  const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(half, u, one));
  static constexpr float kP[] = {-0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f, -0.18628806f,
                                 0.09678418f,  0.37409196f, 1.00002368f,  -1.26551223f};
  __m256 p = _mm256_set1_ps(0.17087277f);
  for (float c : kP) p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(c));
  // erfc(u) = t exp(P - hi - lo)
  const __m256 e = _mm256_mul_ps(t, exp_f32x8(_mm256_sub_ps(_mm256_sub_ps(p, lo), hi)));
  const __m256 he = _mm256_mul_ps(half, e);  // Phi(-|x|)
  const __m256 negative = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ);
  PhiParts r{};
  r.cdf = _mm256_blendv_ps(_mm256_sub_ps(one, he), he, negative);
  if (kWantGauss)  // exp(-hi - lo) = exp(-hi) (1 - lo) to within lo^2 (below 1e-12)
    r.gauss =
        _mm256_mul_ps(exp_f32x8(_mm256_sub_ps(_mm256_setzero_ps(), hi)), _mm256_sub_ps(one, lo));
  return r;
}

}  // namespace

// x Phi(x)
void gelu_f32(const float* x, float* y, int64_t n) {
  vector_loop<8>(x, static_cast<const float*>(nullptr), y, n,
                 [&](const float* xi, const float*, float* yi) {
                   const __m256 v = _mm256_loadu_ps(xi);
                   _mm256_storeu_ps(yi, _mm256_mul_ps(v, phi_parts<false>(v).cdf));
                 });
}

// dy (Phi(x) + x phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
void gelu_backward_f32(const float* x, const float* dy, float* dx, int64_t n) {
  const __m256 inv_sqrt_2pi = _mm256_set1_ps(static_cast<float>(kInvSqrt2Pi));
  vector_loop<8>(x, dy, dx, n, [&](const float* xi, const float* dyi, float* dxi) {
    const __m256 v = _mm256_loadu_ps(xi);
    const PhiParts q = phi_parts<true>(v);
    const __m256 pdf = _mm256_mul_ps(inv_sqrt_2pi, q.gauss);
    _mm256_storeu_ps(dxi, _mm256_mul_ps(_mm256_loadu_ps(dyi), _mm256_fmadd_ps(v, pdf, q.cdf)));
  });
}

void exp_f64(const double* x, double* y, int64_t n) {
  vector_loop<4>(x, static_cast<const double*>(nullptr), y, n,
                 [](const double* xi, const double*, double* yi) {
                   _mm256_storeu_pd(yi, Sleef_expd4_u10avx2(_mm256_loadu_pd(xi)));
                 });
}

namespace {
// exp_f32x8 over its whole domain: NaN kept (the clamp would turn it into exp(-87)), infinity
// past float's largest exp (88.72).
__m256 exp_f32x8_whole(__m256 v) {
  const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
  const __m256 over = _mm256_cmp_ps(v, _mm256_set1_ps(88.72f), _CMP_GT_OQ);
  const __m256 e =
      _mm256_blendv_ps(exp_f32x8(v), _mm256_set1_ps(std::numeric_limits<float>::infinity()), over);
  return _mm256_blendv_ps(e, v, nan);
}
}  // namespace

void exp_f32(const float* x, float* y, int64_t n) {
  vector_loop<8>(x, static_cast<const float*>(nullptr), y, n,
                 [](const float* xi, const float*, float* yi) {
                   _mm256_storeu_ps(yi, exp_f32x8_whole(_mm256_loadu_ps(xi)));
                 });
}

float max_f32(const float* x, int64_t n) {
  if (n < 8) return max_f32_scalar(x, n);
  __m256 m = _mm256_loadu_ps(x);
  int64_t j = 8;
  for (; j + 8 <= n; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + j));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  const float mv = max_f32_scalar(lanes, 8), mt = j < n ? max_f32_scalar(x + j, n - j) : mv;
  return mt > mv ? mt : mv;
}

// Whole vectors, then the tail through a copy padded with -inf (exp 0: the sum is unchanged).
double exp_shift_sum_f32(const float* x, float shift, float* y, int64_t n) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  const auto step = [&](const float* xi, float* yi) {
    const __m256 e = exp_f32x8_whole(_mm256_sub_ps(_mm256_loadu_ps(xi), s));
    _mm256_storeu_ps(yi, e);
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  };
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) step(x + j, y + j);
  if (j < n) {
    float a[8], b[8];
    for (float& v : a) v = -std::numeric_limits<float>::infinity();
    std::memcpy(a, x + j, static_cast<size_t>(n - j) * sizeof(float));
    step(a, b);
    std::memcpy(y + j, b, static_cast<size_t>(n - j) * sizeof(float));
  }
  alignas(32) double parts[4];
  _mm256_store_pd(parts, _mm256_add_pd(lo, hi));
  return (parts[0] + parts[1]) + (parts[2] + parts[3]);
}

}  // namespace sdlora::cpu::avx2
#endif
