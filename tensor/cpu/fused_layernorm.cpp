// CPU LayerNorm backward for frozen weight and bias: dx only, no dw / db sums over the rows.
// The reference semantics of the CUDA kernel in tensor/cuda/fused_layernorm.cu.
#include "tensor/cpu/backend.h"
#include "tensor/cpu/parallel.h"

namespace sdlora::cpu {

// With xhat = (x - mean) rstd and g = dy w, per row:
//   dx = rstd (g - mean_j(g) - xhat mean_j(g xhat))   (+ residual, when given)
void CpuBackend::layernorm_backward_dx(const Tensor& dy, const Tensor& x, const Tensor& w,
                                       const Tensor& mean, const Tensor& rstd, int64_t cols,
                                       const Tensor& residual, Tensor& dx) {
  dispatch_float(x.dtype(), "layernorm_backward_dx", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    const T* dyp = dy.data<T>();
    const T* wp = w.data<T>();
    const float* mp = mean.data<float>();
    const float* rp = rstd.data<float>();
    const T* resp = residual.defined() ? residual.data<T>() : nullptr;
    T* dxp = dx.data<T>();
    const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
    SDLORA_OMP_FOR(x.numel())
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = xp + r * cols;
      const T* dyr = dyp + r * cols;
      const double mu = mp[r], rs = rp[r];
      double g_sum = 0.0, gx_sum = 0.0;
      for (int64_t j = 0; j < cols; ++j) {
        const double g = static_cast<double>(dyr[j]) * static_cast<double>(wp[j]);
        g_sum += g;
        gx_sum += g * (static_cast<double>(xr[j]) - mu) * rs;
      }
      const double g_mean = g_sum / static_cast<double>(cols);
      const double gx_mean = gx_sum / static_cast<double>(cols);
      for (int64_t j = 0; j < cols; ++j) {
        const double g = static_cast<double>(dyr[j]) * static_cast<double>(wp[j]);
        const double xhat = (static_cast<double>(xr[j]) - mu) * rs;
        const double d = rs * (g - g_mean - xhat * gx_mean);
        // The residual added to the rounded dx: the same value as a separate add would give.
        dxp[r * cols + j] = resp == nullptr
                                ? static_cast<T>(d)
                                : static_cast<T>(static_cast<double>(resp[r * cols + j]) +
                                                 static_cast<double>(static_cast<T>(d)));
      }
    }
  });
}

}  // namespace sdlora::cpu
