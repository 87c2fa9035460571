// CPU LayerNorm over the last dim, forward and backward. Statistics in double: biased variance,
// rstd = 1 / sqrt(var + eps). Weight and bias are the dtype of x or float32.
#include <cmath>

#include "tensor/cpu/backend.h"
#include "tensor/cpu/parallel.h"

namespace sdlora::cpu {
namespace {

// Calls f(T{}, W{}) for x of dtype T and weight of dtype W.
template <typename F>
void dispatch_x_w(const Tensor& x, const Tensor& w, const char* kernel, F&& f) {
  dispatch_float(x.dtype(), kernel,
                 [&](auto xt) { dispatch_float(w.dtype(), kernel, [&](auto wt) { f(xt, wt); }); });
}

}  // namespace

// y = (x - mean) rstd w + b, per row of C = cols elements
void CpuBackend::layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, int64_t cols,
                                   double eps, Tensor& y, Tensor& mean, Tensor& rstd) {
  dispatch_x_w(x, w, "layernorm_forward", [&](auto xt, auto wt) {
    using T = decltype(xt);
    using W = decltype(wt);
    const T* xp = x.data<T>();
    const W* wp = w.data<W>();
    const W* bp = b.data<W>();
    T* yp = y.data<T>();
    float* mp = mean.data<float>();
    float* rp = rstd.data<float>();
    const int64_t rows = x.numel() / cols;
    SDLORA_OMP_FOR(x.numel())
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = xp + r * cols;
      double mu = 0.0;
      for (int64_t j = 0; j < cols; ++j) mu += static_cast<double>(xr[j]);
      mu /= static_cast<double>(cols);
      double var = 0.0;
      for (int64_t j = 0; j < cols; ++j) {
        const double d = static_cast<double>(xr[j]) - mu;
        var += d * d;
      }
      var /= static_cast<double>(cols);
      const double rs = 1.0 / std::sqrt(var + eps);
      for (int64_t j = 0; j < cols; ++j) {
        const double xhat = (static_cast<double>(xr[j]) - mu) * rs;
        yp[r * cols + j] =
            static_cast<T>(xhat * static_cast<double>(wp[j]) + static_cast<double>(bp[j]));
      }
      mp[r] = static_cast<float>(mu);
      rp[r] = static_cast<float>(rs);
    }
  });
}

// With xhat = (x - mean) rstd and g = dy w, per row:
//   dx = rstd (g - mean_j(g) - xhat mean_j(g xhat));  dw = sum_rows dy xhat;  db = sum_rows dy
void CpuBackend::layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                    const Tensor& mean, const Tensor& rstd, int64_t cols,
                                    Tensor& dx, Tensor& dw, Tensor& db) {
  dispatch_x_w(x, w, "layernorm_backward", [&](auto xt, auto wt) {
    using T = decltype(xt);
    using W = decltype(wt);
    const T* xp = x.data<T>();
    const T* dyp = dy.data<T>();
    const W* wp = w.data<W>();
    const float* mp = mean.data<float>();
    const float* rp = rstd.data<float>();
    T* dxp = dx.data<T>();
    W* dwp = dw.data<W>();
    W* dbp = db.data<W>();
    const int64_t rows = x.numel() / cols;
    SDLORA_OMP_FOR(x.numel())
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = xp + r * cols;
      const T* dyr = dyp + r * cols;
      const double mu = mp[r], rs = rp[r];
      double g_mean = 0.0, gx_mean = 0.0;
      for (int64_t j = 0; j < cols; ++j) {
        const double g = static_cast<double>(dyr[j]) * static_cast<double>(wp[j]);
        g_mean += g;
        gx_mean += g * (static_cast<double>(xr[j]) - mu) * rs;
      }
      g_mean /= static_cast<double>(cols);
      gx_mean /= static_cast<double>(cols);
      for (int64_t j = 0; j < cols; ++j) {
        const double g = static_cast<double>(dyr[j]) * static_cast<double>(wp[j]);
        const double xhat = (static_cast<double>(xr[j]) - mu) * rs;
        dxp[r * cols + j] = static_cast<T>(rs * (g - g_mean - xhat * gx_mean));
      }
    }
    SDLORA_OMP_FOR(x.numel())
    for (int64_t j = 0; j < cols; ++j) {
      double sw = 0.0, sb = 0.0;
      for (int64_t r = 0; r < rows; ++r) {
        const double d = static_cast<double>(dyp[r * cols + j]);
        const double xhat = (static_cast<double>(xp[r * cols + j]) - mp[r]) * rp[r];
        sw += d * xhat;
        sb += d;
      }
      dwp[j] = static_cast<W>(sw);
      dbp[j] = static_cast<W>(sb);
    }
  });
}

}  // namespace sdlora::cpu
