// CPU LayerNorm over the last dim, forward and backward. Statistics in double: biased variance,
// rstd = 1 / sqrt(var + eps). Weight and bias are the dtype of x or float32. Row sums run in four
// interleaved partial sums (sum4), which the compiler can keep in vector registers where one
// running sum would serialise every add; the weight and bias gradients walk the rows in blocks
// of columns, reading each row contiguously.
#include <algorithm>
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

// sum_j g(j) for j < n in double, as four partial sums (j mod 4) added at the end.
template <typename G>
double sum4(int64_t n, G&& g) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    s0 += g(j);
    s1 += g(j + 1);
    s2 += g(j + 2);
    s3 += g(j + 3);
  }
  for (; j < n; ++j) s0 += g(j);
  return (s0 + s1) + (s2 + s3);
}

// Columns per block of the weight and bias gradient loops.
constexpr int64_t kColBlock = 64;

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
      const double mu = sum4(cols, [&](int64_t j) { return static_cast<double>(xr[j]); }) /
                        static_cast<double>(cols);
      const double var = sum4(cols,
                              [&](int64_t j) {
                                const double d = static_cast<double>(xr[j]) - mu;
                                return d * d;
                              }) /
                         static_cast<double>(cols);
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
      const auto g = [&](int64_t j) {
        return static_cast<double>(dyr[j]) * static_cast<double>(wp[j]);
      };
      const double g_mean = sum4(cols, g) / static_cast<double>(cols);
      const double gx_mean =
          sum4(cols, [&](int64_t j) { return g(j) * (static_cast<double>(xr[j]) - mu) * rs; }) /
          static_cast<double>(cols);
      for (int64_t j = 0; j < cols; ++j) {
        const double g = static_cast<double>(dyr[j]) * static_cast<double>(wp[j]);
        const double xhat = (static_cast<double>(xr[j]) - mu) * rs;
        dxp[r * cols + j] = static_cast<T>(rs * (g - g_mean - xhat * gx_mean));
      }
    }
    // Each column's sums over the rows in row order; a block of columns at a time, so every row
    // is read contiguously.
    const int64_t blocks = (cols + kColBlock - 1) / kColBlock;
    SDLORA_OMP_FOR(x.numel())
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t j0 = blk * kColBlock, n = std::min(kColBlock, cols - j0);
      double sw[kColBlock] = {}, sb[kColBlock] = {};
      for (int64_t r = 0; r < rows; ++r) {
        const T* dyr = dyp + r * cols + j0;
        const T* xr = xp + r * cols + j0;
        const double mu = mp[r], rs = rp[r];
        for (int64_t j = 0; j < n; ++j) {
          const double d = static_cast<double>(dyr[j]);
          sw[j] += d * ((static_cast<double>(xr[j]) - mu) * rs);
          sb[j] += d;
        }
      }
      for (int64_t j = 0; j < n; ++j) {
        dwp[j0 + j] = static_cast<W>(sw[j]);
        dbp[j0 + j] = static_cast<W>(sb[j]);
      }
    }
  });
}

}  // namespace sdlora::cpu
