// CPU softmax and log-softmax over the last dim, and their backward. Stable: each row's max is
// subtracted before exponentiating. float32 rows exponentiate in float32 (vmath.h's exp_f32,
// relative error a few 1e-7) and sum in double; float64 and bfloat16 rows exponentiate and sum in
// double (SLEEF's vector exp), rounded to the tensor's dtype once at the end.
#include <cmath>
#include <vector>

#include "tensor/cpu/backend.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/vmath.h"

namespace sdlora::cpu {
namespace {

// A scratch row of n values, one per thread and type, reused across calls.
template <typename T = double>
T* scratch_row(int64_t n) {
  thread_local std::vector<T> buf;
  if (buf.size() < static_cast<size_t>(n)) buf.resize(static_cast<size_t>(n));
  return buf.data();
}

// One float32 row through vmath.h's row pieces: the max (a NaN anywhere makes the row NaN either
// way: exp(NaN - max) reaches the sum), exp in float32, the sum in double.
void softmax_row_f32(const float* x, float* y, int64_t n, bool log) {
  const float mx = max_f32(x, n);
  if (log) {  // y may be x (in place): the exponentials go to a scratch row
    const double denom = exp_shift_sum_f32(x, mx, scratch_row<float>(n), n);
    const double shift = static_cast<double>(mx) + std::log(denom);
    for (int64_t j = 0; j < n; ++j) y[j] = static_cast<float>(static_cast<double>(x[j]) - shift);
    return;
  }
  const double denom = exp_shift_sum_f32(x, mx, y, n);
  const auto inv = static_cast<float>(1.0 / denom);
  for (int64_t j = 0; j < n; ++j) y[j] *= inv;
}

}  // namespace

// y = exp(x - max) / sum exp(x - max);  log y = x - max - log sum exp(x - max)
void CpuBackend::softmax(const Tensor& x, int64_t cols, bool log, Tensor& out) {
  if (x.dtype() == DType::kFloat32) {
    const float* xp = x.data<float>();
    float* yp = out.data<float>();
    const int64_t rows = x.numel() / cols;
    SDLORA_OMP_FOR(x.numel())
    for (int64_t r = 0; r < rows; ++r) softmax_row_f32(xp + r * cols, yp + r * cols, cols, log);
    return;
  }
  dispatch_float(x.dtype(), "softmax", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* yp = out.data<T>();
    const int64_t rows = x.numel() / cols;
    SDLORA_OMP_FOR(x.numel())
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = xp + r * cols;
      T* yr = yp + r * cols;
      double* e = scratch_row(cols);
      double mx = xr[0];
      for (int64_t j = 1; j < cols; ++j) mx = std::fmax(mx, static_cast<double>(xr[j]));
      for (int64_t j = 0; j < cols; ++j) e[j] = static_cast<double>(xr[j]) - mx;
      exp_f64(e, e, cols);
      double denom = 0.0;
      for (int64_t j = 0; j < cols; ++j) denom += e[j];
      if (log) {
        const double log_denom = std::log(denom);
        for (int64_t j = 0; j < cols; ++j)
          yr[j] = static_cast<T>(static_cast<double>(xr[j]) - mx - log_denom);
      } else {
        const double inv = 1.0 / denom;
        for (int64_t j = 0; j < cols; ++j) yr[j] = static_cast<T>(e[j] * inv);
      }
    }
  });
}

// softmax:     dx = y (dy - sum_j dy_j y_j)
// log-softmax: dx = dy - exp(y) sum_j dy_j
void CpuBackend::softmax_backward(const Tensor& y, const Tensor& dy, int64_t cols, bool log,
                                  Tensor& dx) {
  dispatch_float(y.dtype(), "softmax_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* yp = y.data<T>();
    const T* dyp = dy.data<T>();
    T* dxp = dx.data<T>();
    const int64_t rows = y.numel() / cols;
    SDLORA_OMP_FOR(y.numel())
    for (int64_t r = 0; r < rows; ++r) {
      const T* yr = yp + r * cols;
      const T* dyr = dyp + r * cols;
      T* dxr = dxp + r * cols;
      double dot = 0.0;
      if (log) {
        for (int64_t j = 0; j < cols; ++j) dot += static_cast<double>(dyr[j]);
        double* e = scratch_row(cols);
        for (int64_t j = 0; j < cols; ++j) e[j] = static_cast<double>(yr[j]);
        exp_f64(e, e, cols);
        for (int64_t j = 0; j < cols; ++j)
          dxr[j] = static_cast<T>(static_cast<double>(dyr[j]) - e[j] * dot);
      } else {
        for (int64_t j = 0; j < cols; ++j)
          dot += static_cast<double>(dyr[j]) * static_cast<double>(yr[j]);
        for (int64_t j = 0; j < cols; ++j) {
          const double yj = yr[j], dyj = dyr[j];
          dxr[j] = static_cast<T>(yj * (dyj - dot));
        }
      }
    }
  });
}

}  // namespace sdlora::cpu
