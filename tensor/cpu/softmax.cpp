// CPU softmax and log-softmax over the last dim, and their backward. Stable: each row's max is
// subtracted before exponentiating; the denominator accumulates in double.
#include <cmath>

#include "tensor/cpu/backend.h"
#include "tensor/cpu/parallel.h"

namespace sdlora::cpu {

// y = exp(x - max) / sum exp(x - max);  log y = x - max - log sum exp(x - max)
void CpuBackend::softmax(const Tensor& x, int64_t cols, bool log, Tensor& out) {
  dispatch_float(x.dtype(), "softmax", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* yp = out.data<T>();
    const int64_t rows = x.numel() / cols;
    SDLORA_OMP_FOR(x.numel())
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = xp + r * cols;
      T* yr = yp + r * cols;
      double mx = xr[0];
      for (int64_t j = 1; j < cols; ++j) mx = std::fmax(mx, static_cast<double>(xr[j]));
      double denom = 0.0;
      for (int64_t j = 0; j < cols; ++j) denom += std::exp(static_cast<double>(xr[j]) - mx);
      if (log) {
        const double log_denom = std::log(denom);
        for (int64_t j = 0; j < cols; ++j)
          yr[j] = static_cast<T>(static_cast<double>(xr[j]) - mx - log_denom);
      } else {
        const double inv = 1.0 / denom;
        for (int64_t j = 0; j < cols; ++j)
          yr[j] = static_cast<T>(std::exp(static_cast<double>(xr[j]) - mx) * inv);
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
      for (int64_t j = 0; j < cols; ++j)
        dot += static_cast<double>(dyr[j]) * (log ? 1.0 : static_cast<double>(yr[j]));
      for (int64_t j = 0; j < cols; ++j) {
        const double yj = yr[j], dyj = dyr[j];
        dxr[j] = static_cast<T>(log ? dyj - std::exp(yj) * dot : yj * (dyj - dot));
      }
    }
  });
}

}  // namespace sdlora::cpu
