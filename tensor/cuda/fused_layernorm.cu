// CUDA LayerNorm backward for frozen weight and bias: dx only, so the column sums of dy xhat and
// dy over every row (two more reads of the activations and a second kernel) are skipped.
#include "tensor/cuda/backend.h"
#include "tensor/cuda/kernel_util.cuh"

namespace sdlora::cuda {
namespace {

// One block per row (grid-stride over rows): the row's sums of g = dy w and g xhat, then
//   dx = rstd (g - mean(g) - xhat mean(g xhat))   (+ residual, when given).
template <typename T>
__global__ void layernorm_backward_dx_kernel(const T* __restrict__ dy, const T* __restrict__ x,
                                             const float* __restrict__ w,
                                             const float* __restrict__ mean,
                                             const float* __restrict__ rstd,
                                             const T* __restrict__ residual, T* __restrict__ dx,
                                             int64_t rows, int64_t cols) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* dyr = dy + r * cols;
    const T* xr = x + r * cols;
    const float mu = mean[r], rs = rstd[r];
    float2 sums = make_float2(0.0f, 0.0f);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const float g = to_float(dyr[j]) * w[j];
      sums.x += g;
      sums.y += g * (to_float(xr[j]) - mu) * rs;
    }
    sums = block_reduce(sums, Sum2Op{}, make_float2(0.0f, 0.0f));
    const float g_mean = sums.x / static_cast<float>(cols);
    const float gx_mean = sums.y / static_cast<float>(cols);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const float g = to_float(dyr[j]) * w[j];
      const float xhat = (to_float(xr[j]) - mu) * rs;
      const T d = from_float<T>(rs * (g - g_mean - xhat * gx_mean));
      // The residual added to the rounded dx: what a separate add kernel would give.
      dx[r * cols + j] =
          residual == nullptr ? d : from_float<T>(to_float(residual[r * cols + j]) + to_float(d));
    }
  }
}

}  // namespace

void CudaBackend::layernorm_backward_dx(const Tensor& dy, const Tensor& x, const Tensor& w,
                                        const Tensor& mean, const Tensor& rstd, int64_t cols,
                                        const Tensor& residual, Tensor& dx) {
  SDLORA_CHECK(w.dtype() == DType::kFloat32, "layernorm_backward_dx: weight ", w.describe(),
               " should be float32 on CUDA");
  const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
  if (rows == 0) return;
  cudaStream_t s = stream_for(x);
  const int threads = row_threads(cols, 4, 1024);
  const unsigned grid = grid_for(rows * threads, threads, x.device().index);
  dispatch_float(x.dtype(), "layernorm_backward_dx", [&](auto tag) {
    using T = typename decltype(tag)::type;
    layernorm_backward_dx_kernel<T><<<grid, threads, 0, s>>>(
        ptr<const T>(dy), ptr<const T>(x), ptr<const float>(w), ptr<const float>(mean),
        ptr<const float>(rstd), residual.defined() ? ptr<const T>(residual) : nullptr, ptr<T>(dx),
        rows, cols);
    SDLORA_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace sdlora::cuda
