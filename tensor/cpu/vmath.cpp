// The SSE2 loops of tensor/cpu/vmath.h over SLEEF's 4-lane float and 2-lane double functions,
// and the dispatch: AVX2 (vmath_avx2.cpp) where the processor has AVX2 and FMA, SSE2 on other
// x86-64 processors, the plain scalar loop elsewhere.
#include "tensor/cpu/vmath.h"

#include "tensor/cpu/vmath_isa.h"

#if defined(SDLORA_VMATH_X86)
#include <emmintrin.h>
#include <sleef.h>

#include "tensor/cpu/vmath_loops.h"
#endif

namespace sdlora::cpu {

#if defined(SDLORA_VMATH_X86)
namespace sse2 {

void gelu_f32(const float* x, float* y, int64_t n) {
  const __m128 half = _mm_set1_ps(0.5f), m = _mm_set1_ps(-static_cast<float>(kInvSqrt2));
  vector_loop<4>(x, static_cast<const float*>(nullptr), y, n,
                 [&](const float* xi, const float*, float* yi) {
                   const __m128 v = _mm_loadu_ps(xi);
                   const __m128 c = Sleef_erfcf4_u15sse2(_mm_mul_ps(v, m));
                   _mm_storeu_ps(yi, _mm_mul_ps(_mm_mul_ps(half, v), c));
                 });
}

void gelu_backward_f32(const float* x, const float* dy, float* dx, int64_t n) {
  const __m128 half = _mm_set1_ps(0.5f), m = _mm_set1_ps(-static_cast<float>(kInvSqrt2));
  const __m128 neg_half = _mm_set1_ps(-0.5f);
  const __m128 inv_sqrt_2pi = _mm_set1_ps(static_cast<float>(kInvSqrt2Pi));
  vector_loop<4>(x, dy, dx, n, [&](const float* xi, const float* dyi, float* dxi) {
    const __m128 v = _mm_loadu_ps(xi);
    const __m128 cdf = _mm_mul_ps(half, Sleef_erfcf4_u15sse2(_mm_mul_ps(v, m)));
    const __m128 e = Sleef_expf4_u10sse2(_mm_mul_ps(_mm_mul_ps(neg_half, v), v));
    const __m128 pdf = _mm_mul_ps(inv_sqrt_2pi, e);
    _mm_storeu_ps(dxi, _mm_mul_ps(_mm_loadu_ps(dyi), _mm_add_ps(cdf, _mm_mul_ps(v, pdf))));
  });
}

void exp_f64(const double* x, double* y, int64_t n) {
  vector_loop<2>(x, static_cast<const double*>(nullptr), y, n,
                 [](const double* xi, const double*, double* yi) {
                   _mm_storeu_pd(yi, Sleef_expd2_u10sse2(_mm_loadu_pd(xi)));
                 });
}

void exp_f32(const float* x, float* y, int64_t n) {
  vector_loop<4>(x, static_cast<const float*>(nullptr), y, n,
                 [](const float* xi, const float*, float* yi) {
                   _mm_storeu_ps(yi, Sleef_expf4_u10sse2(_mm_loadu_ps(xi)));
                 });
}

float max_f32(const float* x, int64_t n) { return max_f32_scalar(x, n); }

double exp_shift_sum_f32(const float* x, float shift, float* y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[j] = x[j] - shift;
  exp_f32(y, y, n);
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j) sum += y[j];
  return sum;
}

}  // namespace sse2

bool avx2_usable() {
#if defined(SDLORA_VMATH_AVX2)
  static const bool usable = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return usable;
#else
  return false;  // the compiler could not build vmath_avx2.cpp
#endif
}

#if defined(SDLORA_VMATH_AVX2)
#define SDLORA_VMATH_CALL(f, ...) (avx2_usable() ? avx2::f(__VA_ARGS__) : sse2::f(__VA_ARGS__))
#else
#define SDLORA_VMATH_CALL(f, ...) sse2::f(__VA_ARGS__)
#endif

void gelu_f32(const float* x, float* y, int64_t n) { SDLORA_VMATH_CALL(gelu_f32, x, y, n); }
void gelu_backward_f32(const float* x, const float* dy, float* dx, int64_t n) {
  SDLORA_VMATH_CALL(gelu_backward_f32, x, dy, dx, n);
}
void exp_f64(const double* x, double* y, int64_t n) { SDLORA_VMATH_CALL(exp_f64, x, y, n); }
void exp_f32(const float* x, float* y, int64_t n) { SDLORA_VMATH_CALL(exp_f32, x, y, n); }
float max_f32(const float* x, int64_t n) { return SDLORA_VMATH_CALL(max_f32, x, n); }
double exp_shift_sum_f32(const float* x, float shift, float* y, int64_t n) {
  return SDLORA_VMATH_CALL(exp_shift_sum_f32, x, shift, y, n);
}
const char* vmath_isa() { return avx2_usable() ? "avx2" : "sse2"; }

#else  // not x86-64: the plain loops

void gelu_f32(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_scalar(x[i]);
}
void gelu_backward_f32(const float* x, const float* dy, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * gelu_grad_scalar(x[i]);
}
void exp_f32(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}
float max_f32(const float* x, int64_t n) { return max_f32_scalar(x, n); }
double exp_shift_sum_f32(const float* x, float shift, float* y, int64_t n) {
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j) sum += (y[j] = std::exp(x[j] - shift));
  return sum;
}
void exp_f64(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}
const char* vmath_isa() { return "scalar"; }

#endif

}  // namespace sdlora::cpu
