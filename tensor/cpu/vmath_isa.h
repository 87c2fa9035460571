// The per-instruction-set loops behind tensor/cpu/vmath.h, declared for the dispatcher in
// vmath.cpp and for the tests, which run each against the plain scalar loop. x86-64 only.
#pragma once

#include <cstdint>

namespace sdlora::cpu {

#if defined(__x86_64__)
#define SDLORA_VMATH_X86 1
// SSE2 (every x86-64 processor): vmath.cpp.
namespace sse2 {
void gelu_f32(const float* x, float* y, int64_t n);
void gelu_backward_f32(const float* x, const float* dy, float* dx, int64_t n);
void exp_f64(const double* x, double* y, int64_t n);
void exp_f32(const float* x, float* y, int64_t n);
float max_f32(const float* x, int64_t n);
double exp_shift_sum_f32(const float* x, float shift, float* y, int64_t n);
}  // namespace sse2
// AVX2 + FMA: vmath_avx2.cpp, built with -mavx2 -mfma; call only where avx2_usable() says so.
namespace avx2 {
void gelu_f32(const float* x, float* y, int64_t n);
void gelu_backward_f32(const float* x, const float* dy, float* dx, int64_t n);
void exp_f64(const double* x, double* y, int64_t n);
void exp_f32(const float* x, float* y, int64_t n);
float max_f32(const float* x, int64_t n);
double exp_shift_sum_f32(const float* x, float shift, float* y, int64_t n);
}  // namespace avx2
bool avx2_usable();
#endif

}  // namespace sdlora::cpu
