// Matrix products on CUDA through cuBLAS (float32, TF32 when allowed, bfloat16 with float32
// accumulation and a bfloat16 or float32 result), batched with strides where a stride of 0 shares
// one operand across the batch; leading dimensions and an outer batch level for matmul_view.
#include "tensor/cuda/backend.h"
#include "tensor/cuda/kernel_util.cuh"

namespace sdlora::cuda {

// cuBLAS is column-major; our tensors are row-major. A row-major (r, c) matrix with row pitch c
// is, read column-major with leading dimension c, its transpose (c, r). So instead of
//   C = op(A) op(B)        (row-major, C is m x n)
// we ask cuBLAS for
//   C^T = op(B)^T op(A)^T  (column-major, C^T is n x m with leading dimension n),
// passing B as cuBLAS's first operand and A as its second, each with its own transpose flag
// unchanged: a row-major B (k, n) is already the column-major B^T (n x k, ld n), so no
// transpose is needed; a row-major B stored as (n, k) (trans_b) is column-major (k x n, ld k),
// which cuBLAS transposes. Likewise A: stored (m, k) -> ld k, or (k, m) when trans_a -> ld m.
// The result lands in C's memory as the row-major m x n product with no copies.
void CudaBackend::gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmPlan& plan) {
  SDLORA_CHECK(
      a.dtype() == b.dtype() && (a.dtype() == c.dtype() ||
                                 (a.dtype() == DType::kBFloat16 && c.dtype() == DType::kFloat32)),
      "gemm: dtypes differ: ", a.describe(), ", ", b.describe(), ", ", c.describe());
  if (plan.m == 0 || plan.n == 0 || plan.batch == 0) return;
  SDLORA_CHECK(plan.k > 0 || !plan.strided(), "gemm: a strided plan needs k > 0 (m ", plan.m,
               ", n ", plan.n, ", k ", plan.k, ")");
  if (plan.k == 0) {  // empty sum: C = beta C
    if (plan.beta == 0.0f)
      fill(c, 0.0);
    else
      scalar(ScalarOp::kMul, c, plan.beta, c);
    return;
  }
  cudaDataType_t type = CUDA_R_32F;
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  switch (a.dtype()) {
    case DType::kFloat32:
      compute = allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
      break;
    case DType::kBFloat16:
      type = CUDA_R_16BF;
      break;
    default:
      SDLORA_THROW("gemm: CUDA matrix products take float32 or bfloat16, got ", a.describe());
  }
  // bfloat16 A and B may write a float32 C: the float32 accumulator is stored without rounding.
  const cudaDataType_t type_c = c.dtype() == DType::kFloat32 ? CUDA_R_32F : CUDA_R_16BF;
  const int index = c.device().index;
  set_device(index);
  cublasHandle_t handle = cublas(index);

  const cublasOperation_t op_b = plan.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = plan.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int64_t ld_b = plan.ld_b(), ld_a = plan.ld_a(), ld_c = plan.ld_c();
  const float alpha = plan.alpha, beta = plan.beta;  // scale type float for COMPUTE_32F*
  const size_t ea = dtype_size(a.dtype()), ec = dtype_size(c.dtype());

  // The outer batch level (matmul_view's second batch dimension) is a loop of launches.
  for (int64_t o = 0; o < plan.outer; ++o) {
    const void* pa = static_cast<const char*>(a.raw_data()) + o * plan.outer_a * ea;
    const void* pb = static_cast<const char*>(b.raw_data()) + o * plan.outer_b * ea;
    void* pc = static_cast<char*>(c.raw_data()) + o * plan.outer_c * ec;
    if (plan.batch == 1) {
      SDLORA_CUBLAS_CHECK(cublasGemmEx_64(handle, op_b, op_a, plan.n, plan.m, plan.k, &alpha, pb,
                                          type, ld_b, pa, type, ld_a, &beta, pc, type_c, ld_c,
                                          compute, CUBLAS_GEMM_DEFAULT));
    } else {
      SDLORA_CUBLAS_CHECK(cublasGemmStridedBatchedEx_64(
          handle, op_b, op_a, plan.n, plan.m, plan.k, &alpha, pb, type, ld_b, plan.stride_b, pa,
          type, ld_a, plan.stride_a, &beta, pc, type_c, ld_c, plan.stride_c, plan.batch, compute,
          CUBLAS_GEMM_DEFAULT));
    }
  }
}

}  // namespace sdlora::cuda
