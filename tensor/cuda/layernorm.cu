// LayerNorm over the last dimension on CUDA. Forward: a warp or block per row, two-pass mean and
// variance in float, mean and rstd kept for backward. Backward: dx per row, and dw/db through
// per-block column partials reduced by a second kernel in a fixed order (deterministic, no
// floating-point atomics). The weight may be float32 while x is bfloat16.
#include "tensor/cuda/backend.h"
#include "tensor/cuda/kernel_util.cuh"

namespace sdlora::cuda {
namespace {

// Fuses the row statistics, the normalisation and the affine map: y = (x - mean) rstd w + b per
// row; mean, rstd (rows) float32.
template <bool kWarpRow, typename T, typename W>
__global__ void layernorm_forward_kernel(const T* __restrict__ x, const W* __restrict__ w,
                                         const W* __restrict__ b, T* __restrict__ y,
                                         float* __restrict__ mean, float* __restrict__ rstd,
                                         int64_t rows, int64_t cols, float eps) {
  const RowLayout<kWarpRow> row_layout;
  for (int64_t row = row_layout.first_row; row < rows; row += row_layout.row_step) {
    const T* xr = x + row * cols;
    T* yr = y + row * cols;
    float sum = 0.0f;
    for (int64_t j = row_layout.lane; j < cols; j += row_layout.width) sum += to_float(xr[j]);
    const float mu = row_reduce<kWarpRow>(sum, SumOp{}, 0.0f) / static_cast<float>(cols);
    float sq = 0.0f;
    for (int64_t j = row_layout.lane; j < cols; j += row_layout.width) {
      const float d = to_float(xr[j]) - mu;
      sq += d * d;
    }
    const float var = row_reduce<kWarpRow>(sq, SumOp{}, 0.0f) / static_cast<float>(cols);
    const float rs = 1.0f / sqrtf(var + eps);
    for (int64_t j = row_layout.lane; j < cols; j += row_layout.width)
      yr[j] = from_float<T>((to_float(xr[j]) - mu) * rs * to_float(w[j]) + to_float(b[j]));
    if (row_layout.lane == 0) {
      mean[row] = mu;
      rstd[row] = rs;
    }
  }
}

// Fuses LayerNorm's dx with the first stage of dw and db, in one pass over x and dy.
// Per row: dx = rstd (g - mean(g) - xhat mean(g xhat)) with g = dy w, xhat = (x - mean) rstd;
// and, per block, column sums of dy xhat (dw) and dy (db) over the rows
// the block visits, written to partial (gridDim.x, 2, cols). Thread t owns columns t + k
// blockDim.x in every row, so its column accumulators need no synchronisation. They live in
// shared memory when it fits (acc_in_shared), else in the block's slice of partial.
template <typename T, typename W>
__global__ void layernorm_backward_kernel(const T* __restrict__ dy, const T* __restrict__ x,
                                          const W* __restrict__ w, const float* __restrict__ mean,
                                          const float* __restrict__ rstd, T* __restrict__ dx,
                                          float* __restrict__ partial, int64_t rows, int64_t cols,
                                          bool acc_in_shared) {
  extern __shared__ float shared_acc[];
  float* block_partial = partial + static_cast<int64_t>(blockIdx.x) * 2 * cols;
  float* acc_dw = acc_in_shared ? shared_acc : block_partial;
  float* acc_db = acc_dw + cols;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    acc_dw[j] = 0.0f;
    acc_db[j] = 0.0f;
  }
  const float inv_cols = 1.0f / static_cast<float>(cols);
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* dyr = dy + row * cols;
    const T* xr = x + row * cols;
    T* dxr = dx + row * cols;
    const float mu = mean[row], rs = rstd[row];
    float2 sums = make_float2(0.0f, 0.0f);  // sum g, sum g xhat
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const float xhat = (to_float(xr[j]) - mu) * rs;
      const float g = to_float(dyr[j]) * to_float(w[j]);
      sums.x += g;
      sums.y += g * xhat;
    }
    sums = block_reduce(sums, Sum2Op{}, make_float2(0.0f, 0.0f));
    const float mean_g = sums.x * inv_cols, mean_gx = sums.y * inv_cols;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const float xhat = (to_float(xr[j]) - mu) * rs;
      const float d = to_float(dyr[j]);
      const float g = d * to_float(w[j]);
      dxr[j] = from_float<T>(rs * (g - mean_g - xhat * mean_gx));
      acc_dw[j] += d * xhat;
      acc_db[j] += d;
    }
  }
  if (acc_in_shared) {
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      block_partial[j] = acc_dw[j];
      block_partial[cols + j] = acc_db[j];
    }
  }
}

// dw[c] = sum over blocks of partial[blk][0][c], db likewise from partial[blk][1][c]. Block
// (32, 32): 32 columns, the blocks split over threadIdx.y and combined in shared memory.
template <typename W>
__global__ void layernorm_param_grad_kernel(const float* __restrict__ partial, int64_t blocks,
                                            int64_t cols, W* __restrict__ dw, W* __restrict__ db) {
  __shared__ float2 slots[kWarp][kWarp + 1];  // +1: no bank conflicts
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kWarp + threadIdx.x;
  float2 acc = make_float2(0.0f, 0.0f);
  if (c < cols) {
    for (int64_t blk = threadIdx.y; blk < blocks; blk += blockDim.y) {
      acc.x += partial[blk * 2 * cols + c];
      acc.y += partial[blk * 2 * cols + cols + c];
    }
  }
  slots[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  for (int half = blockDim.y / 2; half > 0; half >>= 1) {
    if (threadIdx.y < half) {
      const float2 o = slots[threadIdx.y + half][threadIdx.x];
      slots[threadIdx.y][threadIdx.x].x += o.x;
      slots[threadIdx.y][threadIdx.x].y += o.y;
    }
    __syncthreads();
  }
  if (threadIdx.y == 0 && c < cols) {
    dw[c] = from_float<W>(slots[0][threadIdx.x].x);
    db[c] = from_float<W>(slots[0][threadIdx.x].y);
  }
}

// Dynamic shared memory a block may use without opting in: 48 KiB in all, less what the kernel's
// block reduction declares statically.
constexpr size_t kDynamicSharedBudget = 47 * 1024;

}  // namespace

void CudaBackend::layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, int64_t cols,
                                    double eps, Tensor& y, Tensor& mean, Tensor& rstd) {
  if (x.numel() == 0 || cols == 0) return;
  const int64_t rows = x.numel() / cols;
  cudaStream_t s = stream_for(y);
  const float feps = static_cast<float>(eps);
  dispatch_float(x.dtype(), "layernorm", [&](auto xtag) {
    using T = typename decltype(xtag)::type;
    dispatch_float(w.dtype(), "layernorm", [&](auto wtag) {
      using W = typename decltype(wtag)::type;
      launch_rows(rows, cols, y.device().index, [&](unsigned grid, int threads, bool warp_row) {
        if (warp_row)
          layernorm_forward_kernel<true, T, W>
              <<<grid, threads, 0, s>>>(ptr<T>(x), ptr<W>(w), ptr<W>(b), ptr<T>(y),
                                        ptr<float>(mean), ptr<float>(rstd), rows, cols, feps);
        else
          layernorm_forward_kernel<false, T, W>
              <<<grid, threads, 0, s>>>(ptr<T>(x), ptr<W>(w), ptr<W>(b), ptr<T>(y),
                                        ptr<float>(mean), ptr<float>(rstd), rows, cols, feps);
      });
    });
  });
  SDLORA_CUDA_CHECK_LAUNCH();
}

void CudaBackend::layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                     const Tensor& mean, const Tensor& rstd, int64_t cols,
                                     Tensor& dx, Tensor& dw, Tensor& db) {
  if (cols == 0) return;
  const int64_t rows = x.numel() / cols;
  const int device = dx.device().index;
  cudaStream_t s = stream_for(dx);
  if (rows == 0) {
    fill(dw, 0.0);
    fill(db, 0.0);
    return;
  }
  const int threads = row_threads(cols, 4, 1024);
  const int64_t max_blocks = static_cast<int64_t>(sm_count(device)) * 8;
  const int64_t blocks = rows < max_blocks ? rows : max_blocks;
  const size_t acc_bytes = 2 * static_cast<size_t>(cols) * sizeof(float);
  const bool acc_in_shared = acc_bytes <= kDynamicSharedBudget;
  // Column partials from the caching pool; stream order protects the block after release.
  Tensor partial = Tensor::empty({blocks, 2, cols}, DType::kFloat32, dx.device());
  dispatch_float(x.dtype(), "layernorm_backward", [&](auto xtag) {
    using T = typename decltype(xtag)::type;
    dispatch_float(w.dtype(), "layernorm_backward", [&](auto wtag) {
      using W = typename decltype(wtag)::type;
      layernorm_backward_kernel<T, W>
          <<<static_cast<unsigned>(blocks), threads, acc_in_shared ? acc_bytes : 0, s>>>(
              ptr<T>(dy), ptr<T>(x), ptr<W>(w), ptr<float>(mean), ptr<float>(rstd), ptr<T>(dx),
              ptr<float>(partial), rows, cols, acc_in_shared);
      SDLORA_CUDA_CHECK_LAUNCH();
      const dim3 block(kWarp, kWarp);
      const unsigned grid = static_cast<unsigned>((cols + kWarp - 1) / kWarp);
      layernorm_param_grad_kernel<W>
          <<<grid, block, 0, s>>>(ptr<float>(partial), blocks, cols, ptr<W>(dw), ptr<W>(db));
      SDLORA_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace sdlora::cuda
