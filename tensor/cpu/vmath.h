// Transcendental loops of the CPU kernels: the exact-erf GELU, its derivative and exp, as plain
// scalar formulas (the reference, used for float64) and as vectorised float32 / float64 array
// loops (AVX2 when the processor has it, SSE2 through SLEEF otherwise), which the kernels use.
#pragma once

#include <cmath>
#include <cstdint>

namespace sdlora::cpu {

inline constexpr double kInvSqrt2 = 0.70710678118654752440;
inline constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1 / sqrt(2 pi)

// gelu(x) = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
template <typename T>
T gelu_scalar(T x) {
  return static_cast<T>(0.5) * x * (static_cast<T>(1) + std::erf(x * static_cast<T>(kInvSqrt2)));
}

// gelu'(x) = Phi(x) + x phi(x), phi the standard normal density
template <typename T>
T gelu_grad_scalar(T x) {
  const T cdf = static_cast<T>(0.5) * (static_cast<T>(1) + std::erf(x * static_cast<T>(kInvSqrt2)));
  const T pdf = static_cast<T>(kInvSqrt2Pi) * std::exp(static_cast<T>(-0.5) * x * x);
  return cdf + x * pdf;
}

// The vectorised loops. They write Phi(x) as 0.5 erfc(-x / sqrt 2), the same function as
// 0.5 (1 + erf(x / sqrt 2)) but without the cancellation of 1 + erf for negative x. AVX2: erfc
// from its Chebyshev-fitted form (fractional error below 1.2e-7) with an own exp
// (vmath_avx2.cpp); SSE2: SLEEF's 1.5-ulp erfc, its cheaper erf where every lane is at least -2,
// and its 1-ulp exp. Any n >= 0; in-place (y == x) is allowed.
void gelu_f32(const float* x, float* y, int64_t n);
// dx = dy gelu'(x)
void gelu_backward_f32(const float* x, const float* dy, float* dx, int64_t n);
// y = exp(x) in float64 (the cross-entropy row sums stay in double).
void exp_f64(const double* x, double* y, int64_t n);
// y = exp(x) in float32 (float32 softmax): relative error a few 1e-7 (AVX2: the exp of the GELU
// loops; SSE2: SLEEF's 1-ulp exp); NaN stays NaN, -inf gives 0, and AVX2 gives 0 below -87
// (where float's normal range ends) rather than a subnormal.
void exp_f32(const float* x, float* y, int64_t n);
// The pieces of a float32 softmax row (n >= 1): the row's max (NaN entries may be skipped: a NaN
// reaches the sum through exp either way), and y = exp(x - shift) with its sum in double (y may
// be x).
float max_f32(const float* x, int64_t n);
inline float max_f32_scalar(const float* x, int64_t n) {  // the plain loop behind max_f32
  float mx = x[0];
  for (int64_t j = 1; j < n; ++j) mx = x[j] > mx ? x[j] : mx;
  return mx;
}
double exp_shift_sum_f32(const float* x, float shift, float* y, int64_t n);
// Which loops run: "avx2", "sse2" or "scalar" (no SLEEF vector functions on this processor).
const char* vmath_isa();

}  // namespace sdlora::cpu
