// Softmax and log-softmax over the last dimension on CUDA, forward and backward. A warp per row
// for rows up to kWarpRowMax, a block per row beyond; the row maximum is subtracted before
// exponentiating (numerically stable) and every statistic is accumulated in float.
#include "tensor/cuda/backend.h"
#include "tensor/cuda/kernel_util.cuh"

namespace sdlora::cuda {
namespace {

// y = softmax(x) = exp(x - max) / sum, or log-softmax y = (x - max) - log(sum), per row.
template <bool kWarpRow, typename T>
__global__ void softmax_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                       int64_t cols, bool log) {
  const RowLayout<kWarpRow> row_layout;
  for (int64_t row = row_layout.first_row; row < rows; row += row_layout.row_step) {
    const T* xr = x + row * cols;
    T* yr = y + row * cols;
    float m = -INFINITY;
    for (int64_t j = row_layout.lane; j < cols; j += row_layout.width)
      m = MaxOp{}(m, to_float(xr[j]));
    m = row_reduce<kWarpRow>(m, MaxOp{}, -INFINITY);
    float sum = 0.0f;
    for (int64_t j = row_layout.lane; j < cols; j += row_layout.width)
      sum += expf(to_float(xr[j]) - m);
    sum = row_reduce<kWarpRow>(sum, SumOp{}, 0.0f);
    if (log) {
      const float log_sum = logf(sum);
      for (int64_t j = row_layout.lane; j < cols; j += row_layout.width)
        yr[j] = from_float<T>((to_float(xr[j]) - m) - log_sum);
    } else {
      const float inv = 1.0f / sum;
      for (int64_t j = row_layout.lane; j < cols; j += row_layout.width)
        yr[j] = from_float<T>(expf(to_float(xr[j]) - m) * inv);
    }
  }
}

// From the forward output y: softmax dx = y (dy - sum(dy y)); log-softmax dx = dy - exp(y) sum(dy).
template <bool kWarpRow, typename T>
__global__ void softmax_backward_kernel(const T* __restrict__ y, const T* __restrict__ dy,
                                        T* __restrict__ dx, int64_t rows, int64_t cols, bool log) {
  const RowLayout<kWarpRow> row_layout;
  for (int64_t row = row_layout.first_row; row < rows; row += row_layout.row_step) {
    const T* yr = y + row * cols;
    const T* dyr = dy + row * cols;
    T* dxr = dx + row * cols;
    float dot = 0.0f;
    if (log) {
      for (int64_t j = row_layout.lane; j < cols; j += row_layout.width) dot += to_float(dyr[j]);
    } else {
      for (int64_t j = row_layout.lane; j < cols; j += row_layout.width)
        dot += to_float(dyr[j]) * to_float(yr[j]);
    }
    dot = row_reduce<kWarpRow>(dot, SumOp{}, 0.0f);
    for (int64_t j = row_layout.lane; j < cols; j += row_layout.width) {
      const float yv = to_float(yr[j]), g = to_float(dyr[j]);
      dxr[j] = from_float<T>(log ? g - expf(yv) * dot : yv * (g - dot));
    }
  }
}

}  // namespace

void CudaBackend::softmax(const Tensor& x, int64_t cols, bool log, Tensor& out) {
  if (x.numel() == 0 || cols == 0) return;
  const int64_t rows = x.numel() / cols;
  cudaStream_t s = stream_for(out);
  dispatch_float(x.dtype(), log ? "log_softmax" : "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_rows(rows, cols, out.device().index, [&](unsigned grid, int threads, bool warp_row) {
      if (warp_row)
        softmax_forward_kernel<true, T>
            <<<grid, threads, 0, s>>>(ptr<T>(x), ptr<T>(out), rows, cols, log);
      else
        softmax_forward_kernel<false, T>
            <<<grid, threads, 0, s>>>(ptr<T>(x), ptr<T>(out), rows, cols, log);
    });
  });
  SDLORA_CUDA_CHECK_LAUNCH();
}

void CudaBackend::softmax_backward(const Tensor& y, const Tensor& dy, int64_t cols, bool log,
                                   Tensor& dx) {
  if (y.numel() == 0 || cols == 0) return;
  const int64_t rows = y.numel() / cols;
  cudaStream_t s = stream_for(dx);
  dispatch_float(y.dtype(), log ? "log_softmax_backward" : "softmax_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_rows(rows, cols, dx.device().index, [&](unsigned grid, int threads, bool warp_row) {
      if (warp_row)
        softmax_backward_kernel<true, T>
            <<<grid, threads, 0, s>>>(ptr<T>(y), ptr<T>(dy), ptr<T>(dx), rows, cols, log);
      else
        softmax_backward_kernel<false, T>
            <<<grid, threads, 0, s>>>(ptr<T>(y), ptr<T>(dy), ptr<T>(dx), rows, cols, log);
    });
  });
  SDLORA_CUDA_CHECK_LAUNCH();
}

}  // namespace sdlora::cuda
