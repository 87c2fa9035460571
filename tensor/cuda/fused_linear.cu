// CUDA fused linear kernels: products with the bias, the residual (as C) or the bias gradient in
// cuBLASLt's epilogue (lt.cpp), and the exact GELU backward fused with the column sums of its
// result. cuBLASLt's own GELU epilogues compute the tanh approximation, not the exact erf GELU
// the ViT is trained with, so GELU stays in these kernels.
#include "tensor/cuda/backend.h"
#include "tensor/cuda/kernel_util.cuh"
#include "tensor/cuda/lt.h"

namespace sdlora::cuda {
namespace {

// Fuses the GELU backward with the bias-gradient reduction: thread (col, chunk) walks its chunk
// of rows down one column, writes dx = dy gelu'(pre) and sums dx as stored (float32) into
// partial[chunk, col]; consecutive threads read consecutive columns.
template <typename T>
__global__ void gelu_backward_bgrad_kernel(const T* __restrict__ pre, const T* __restrict__ dy,
                                           T* __restrict__ dx, float* __restrict__ partial,
                                           int64_t rows, int64_t cols, int64_t rows_per_chunk) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (col >= cols) return;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_chunk;
  const int64_t r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  float acc = 0.0f;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t i = r * cols + col;
    const float x = to_float(pre[i]);
    const float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752440f));
    const float pdf = 0.39894228040143267794f * expf(-0.5f * x * x);
    const T g = from_float<T>(to_float(dy[i]) * (cdf + x * pdf));
    dx[i] = g;
    acc += to_float(g);
  }
  partial[static_cast<int64_t>(blockIdx.y) * cols + col] = acc;
}

}  // namespace

void CudaBackend::gemm_fused(const Tensor& a, const Tensor& b, Tensor& c, const GemmPlan& plan,
                             const GemmEpilogue& ep) {
  SDLORA_CHECK(plan.batch == 1, "gemm_fused: batch 1 only, got ", plan.batch);
  if (plan.m > 0 && plan.n > 0 && plan.k > 0 && lt_matmul(a, b, c, plan, ep)) return;
  // The unfused composition, where cuBLASLt has no algorithm (or the product is empty).
  GemmPlan p = plan;
  if (ep.residual != nullptr) {
    c.copy_(*ep.residual);
    p.alpha = p.beta = 1.0f;
  }
  gemm(a, b, c, p);
  if (ep.bias != nullptr && c.numel() > 0) {
    BroadcastPlan bp;
    bp.ndim = 2;
    bp.shape[0] = p.m;
    bp.shape[1] = p.n;
    bp.a_stride[0] = p.n;
    bp.a_stride[1] = 1;
    bp.b_stride[0] = 0;
    bp.b_stride[1] = 1;
    bp.numel = p.m * p.n;
    binary(BinaryOp::kAdd, c, *ep.bias, bp, c);
  }
  if (ep.bias_grad != nullptr) {  // sum over k of op(A): A is (m, k), or (k, m) when transposed
    AxisPlan ap;
    ap.outer = p.trans_a ? 1 : p.m;
    ap.n = p.k;
    ap.inner = p.trans_a ? p.m : 1;
    reduce(ReduceOp::kSum, a, ap, *ep.bias_grad);
  }
}

void CudaBackend::gelu_backward_bgrad(const Tensor& pre, const Tensor& dy, int64_t cols, Tensor& dx,
                                      Tensor& db) {
  const int64_t rows = cols == 0 ? 0 : pre.numel() / cols;
  if (cols == 0) return;
  if (rows == 0) {
    fill(db, 0.0);
    return;
  }
  const int index = pre.device().index;
  cudaStream_t s = stream_for(pre);
  const int threads = 128;
  const int64_t col_blocks = (cols + threads - 1) / threads;
  // Enough chunks of rows to give every SM a few blocks, each chunk at least 16 rows.
  const int64_t want = static_cast<int64_t>(sm_count(index)) * 4 / col_blocks + 1;
  const int64_t max_chunks = (rows + 15) / 16;
  int64_t chunks = want < max_chunks ? want : max_chunks;
  if (chunks > 65535) chunks = 65535;
  const int64_t rows_per_chunk = (rows + chunks - 1) / chunks;
  chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
  SDLORA_CHECK(col_blocks <= 0x7fffffff, "gelu_backward_bgrad: ", cols, " columns are too many");
  Tensor partial = Tensor::empty({chunks, cols}, DType::kFloat32, pre.device());
  dispatch_float(pre.dtype(), "gelu_backward_bgrad", [&](auto tag) {
    using T = typename decltype(tag)::type;
    gelu_backward_bgrad_kernel<T>
        <<<dim3(static_cast<unsigned>(col_blocks), static_cast<unsigned>(chunks)), threads, 0, s>>>(
            ptr<const T>(pre), ptr<const T>(dy), ptr<T>(dx), ptr<float>(partial), rows, cols,
            rows_per_chunk);
    SDLORA_CUDA_CHECK_LAUNCH();
  });
  AxisPlan ap;
  ap.outer = 1;
  ap.n = chunks;
  ap.inner = cols;
  reduce(ReduceOp::kSum, partial, ap, db);
}

}  // namespace sdlora::cuda
