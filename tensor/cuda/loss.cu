// Cross-entropy on CUDA: per-row losses (a warp or block per row, stable log-sum-exp in float),
// then a one-block mean in a fixed order (deterministic). The backward reads dloss from device
// memory, so no step of it waits on the host. A label out of range yields NaN for its row
// instead of reading outside the logits.
#include "tensor/cuda/backend.h"
#include "tensor/cuda/kernel_util.cuh"

namespace sdlora::cuda {
namespace {

// Fuses log-softmax and the label pick: row_loss[b] = log(sum_c exp(x[b, c] - m)) - (x[b, label]
// - m), m the row maximum.
template <bool kWarpRow, typename T, typename L>
__global__ void cross_entropy_rows_kernel(const T* __restrict__ logits,
                                          const L* __restrict__ labels,
                                          float* __restrict__ row_loss, int64_t rows,
                                          int64_t cols) {
  const RowLayout<kWarpRow> row_layout;
  for (int64_t row = row_layout.first_row; row < rows; row += row_layout.row_step) {
    const T* xr = logits + row * cols;
    float m = -INFINITY;
    for (int64_t j = row_layout.lane; j < cols; j += row_layout.width)
      m = MaxOp{}(m, to_float(xr[j]));
    m = row_reduce<kWarpRow>(m, MaxOp{}, -INFINITY);
    float sum = 0.0f;
    for (int64_t j = row_layout.lane; j < cols; j += row_layout.width)
      sum += expf(to_float(xr[j]) - m);
    sum = row_reduce<kWarpRow>(sum, SumOp{}, 0.0f);
    if (row_layout.lane == 0) {
      const int64_t label = static_cast<int64_t>(labels[row]);
      row_loss[row] = (label >= 0 && label < cols) ? logf(sum) - (to_float(xr[label]) - m) : NAN;
    }
  }
}

// loss = mean of row_loss, one block of kMeanThreads, a fixed summation order.
constexpr int kMeanThreads = 1024;
__global__ void mean_kernel(const float* __restrict__ row_loss, int64_t rows,
                            float* __restrict__ loss) {
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < rows; i += blockDim.x) sum += row_loss[i];
  sum = block_reduce(sum, SumOp{}, 0.0f);
  if (threadIdx.x == 0) *loss = sum / static_cast<float>(rows);
}

// Fuses softmax, the one-hot subtraction and the dloss / B scale:
// dlogits[b, c] = (softmax(x[b])[c] - [c == label]) * dloss / B, with dloss read on the device.
template <bool kWarpRow, typename T, typename L>
__global__ void cross_entropy_backward_kernel(const T* __restrict__ logits,
                                              const L* __restrict__ labels,
                                              const float* __restrict__ dloss,
                                              T* __restrict__ dlogits, int64_t rows, int64_t cols) {
  const RowLayout<kWarpRow> row_layout;
  const float scale = *dloss / static_cast<float>(rows);
  for (int64_t row = row_layout.first_row; row < rows; row += row_layout.row_step) {
    const T* xr = logits + row * cols;
    T* dr = dlogits + row * cols;
    float m = -INFINITY;
    for (int64_t j = row_layout.lane; j < cols; j += row_layout.width)
      m = MaxOp{}(m, to_float(xr[j]));
    m = row_reduce<kWarpRow>(m, MaxOp{}, -INFINITY);
    float sum = 0.0f;
    for (int64_t j = row_layout.lane; j < cols; j += row_layout.width)
      sum += expf(to_float(xr[j]) - m);
    sum = row_reduce<kWarpRow>(sum, SumOp{}, 0.0f);
    const float inv = 1.0f / sum;
    const int64_t label = static_cast<int64_t>(labels[row]);
    const bool valid = label >= 0 && label < cols;
    for (int64_t j = row_layout.lane; j < cols; j += row_layout.width) {
      const float p = expf(to_float(xr[j]) - m) * inv;
      const float g = valid ? (p - (j == label ? 1.0f : 0.0f)) * scale : NAN;
      dr[j] = from_float<T>(g);
    }
  }
}

}  // namespace

void CudaBackend::cross_entropy(const Tensor& logits, const Tensor& labels, Tensor& loss) {
  const int64_t rows = logits.size(0), cols = logits.size(1);
  if (rows == 0 || cols == 0) return;
  const int device = loss.device().index;
  cudaStream_t s = stream_for(loss);
  // Per-row losses from the caching pool; stream order protects the block after release.
  Tensor row_loss = Tensor::empty({rows}, DType::kFloat32, loss.device());
  dispatch_float(logits.dtype(), "cross_entropy", [&](auto ttag) {
    using T = typename decltype(ttag)::type;
    dispatch_index(labels.dtype(), "cross_entropy", [&](auto ltag) {
      using L = typename decltype(ltag)::type;
      launch_rows(rows, cols, device, [&](unsigned grid, int threads, bool warp_row) {
        if (warp_row)
          cross_entropy_rows_kernel<true, T, L><<<grid, threads, 0, s>>>(
              ptr<T>(logits), ptr<L>(labels), ptr<float>(row_loss), rows, cols);
        else
          cross_entropy_rows_kernel<false, T, L><<<grid, threads, 0, s>>>(
              ptr<T>(logits), ptr<L>(labels), ptr<float>(row_loss), rows, cols);
      });
    });
  });
  SDLORA_CUDA_CHECK_LAUNCH();
  mean_kernel<<<1, kMeanThreads, 0, s>>>(ptr<float>(row_loss), rows, ptr<float>(loss));
  SDLORA_CUDA_CHECK_LAUNCH();
}

void CudaBackend::cross_entropy_backward(const Tensor& logits, const Tensor& labels,
                                         const Tensor& dloss, Tensor& dlogits) {
  const int64_t rows = logits.size(0), cols = logits.size(1);
  if (rows == 0 || cols == 0) return;
  const int device = dlogits.device().index;
  cudaStream_t s = stream_for(dlogits);
  dispatch_float(logits.dtype(), "cross_entropy_backward", [&](auto ttag) {
    using T = typename decltype(ttag)::type;
    dispatch_index(labels.dtype(), "cross_entropy_backward", [&](auto ltag) {
      using L = typename decltype(ltag)::type;
      launch_rows(rows, cols, device, [&](unsigned grid, int threads, bool warp_row) {
        if (warp_row)
          cross_entropy_backward_kernel<true, T, L><<<grid, threads, 0, s>>>(
              ptr<T>(logits), ptr<L>(labels), ptr<float>(dloss), ptr<T>(dlogits), rows, cols);
        else
          cross_entropy_backward_kernel<false, T, L><<<grid, threads, 0, s>>>(
              ptr<T>(logits), ptr<L>(labels), ptr<float>(dloss), ptr<T>(dlogits), rows, cols);
      });
    });
  });
  SDLORA_CUDA_CHECK_LAUNCH();
}

}  // namespace sdlora::cuda
