// cuBLASLt products with epilogues: one handle per device, descriptors built per call (cheap
// host objects), the workspace from the caching pool. Row-major tensors are read as their
// column-major transposes exactly as in matmul.cu: cuBLASLt computes D^T = op(B)^T op(A)^T.
#include "tensor/cuda/lt.h"

#include <cublasLt.h>

#include <array>
#include <mutex>

#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"

namespace sdlora::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // what cuBLASLt's Hopper kernels want

struct LtSlot {
  std::once_flag once;
  cublasLtHandle_t handle = nullptr;
};

cublasLtHandle_t lt_handle(int index) {
  static std::array<LtSlot, 64> slots;  // per device, created on first use, kept for the process
  SDLORA_CHECK(index >= 0 && index < static_cast<int>(slots.size()), "cuBLASLt: device index ",
               index, " out of range");
  LtSlot& s = slots[static_cast<size_t>(index)];
  std::call_once(s.once, [&] { SDLORA_CUBLAS_CHECK(cublasLtCreate(&s.handle)); });
  return s.handle;
}

// RAII for the three descriptor kinds.
struct Desc {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  Desc() = default;
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;
  ~Desc() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    for (cublasLtMatrixLayout_t l : {a, b, c, d})
      if (l) cublasLtMatrixLayoutDestroy(l);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

cudaDataType_t lt_type(const Tensor& t) {
  switch (t.dtype()) {
    case DType::kFloat32:
      return CUDA_R_32F;
    case DType::kBFloat16:
      return CUDA_R_16BF;
    default:
      SDLORA_THROW("cuBLASLt: products take float32 or bfloat16, got ", t.describe());
  }
}

template <typename V>
void set_attr(cublasLtMatmulDesc_t op, cublasLtMatmulDescAttributes_t attr, const V& value) {
  SDLORA_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, attr, &value, sizeof(value)));
}

}  // namespace

bool lt_matmul(const Tensor& a, const Tensor& b, Tensor& c, const GemmPlan& p,
               const GemmEpilogue& ep) {
  SDLORA_CHECK(p.batch == 1, "cuBLASLt: batch 1 only, got ", p.batch);
  if (ep.bias != nullptr && ep.bias_grad != nullptr) return false;  // one epilogue per product
  const int index = c.device().index;
  set_device(index);
  const cudaDataType_t ab_type = lt_type(a), c_type = lt_type(c);
  const cublasComputeType_t compute = a.dtype() == DType::kFloat32 && allow_tf32()
                                          ? CUBLAS_COMPUTE_32F_FAST_TF32
                                          : CUBLAS_COMPUTE_32F;

  Desc d;
  SDLORA_CUBLAS_CHECK(cublasLtMatmulDescCreate(&d.op, compute, CUDA_R_32F));
  // cuBLASLt's first operand is our B, its second our A (see matmul.cu).
  const cublasOperation_t op_first = p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  set_attr(d.op, CUBLASLT_MATMUL_DESC_TRANSA, op_first);
  set_attr(d.op, CUBLASLT_MATMUL_DESC_TRANSB, op_second);
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias_ptr = nullptr;
  if (ep.bias != nullptr) {  // length n: the rows of the column-major D^T
    epilogue = CUBLASLT_EPILOGUE_BIAS;
    bias_ptr = ep.bias->raw_data();
    set_attr(d.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, static_cast<int32_t>(lt_type(*ep.bias)));
  } else if (ep.bias_grad != nullptr) {  // length m: the columns of D^T, summed over k of our A
    epilogue = CUBLASLT_EPILOGUE_BGRADB;
    bias_ptr = ep.bias_grad->raw_data();
    set_attr(d.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
             static_cast<int32_t>(lt_type(*ep.bias_grad)));
  }
  set_attr(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue);
  if (bias_ptr != nullptr) set_attr(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias_ptr);

  // Stored shapes (rows, cols, ld) column-major: our B (k, n) row-major is (n x k, ld n), or
  // (k x n, ld k) when stored (n, k); our A (m, k) is (k x m, ld k), or (m x k, ld m).
  const uint64_t m = static_cast<uint64_t>(p.m), n = static_cast<uint64_t>(p.n),
                 k = static_cast<uint64_t>(p.k);
  if (p.trans_b)
    SDLORA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.a, ab_type, k, n, p.k));
  else
    SDLORA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.a, ab_type, n, k, p.n));
  if (p.trans_a)
    SDLORA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.b, ab_type, m, k, p.m));
  else
    SDLORA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.b, ab_type, k, m, p.k));
  SDLORA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.c, c_type, n, m, p.n));
  SDLORA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.d, c_type, n, m, p.n));

  SDLORA_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&d.pref));
  const uint64_t ws_bytes = kWorkspaceBytes;
  SDLORA_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof(ws_bytes)));
  cublasLtHandle_t handle = lt_handle(index);
  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle, d.op, d.a, d.b, d.c, d.d, d.pref,
                                                           1, &heuristic, &found);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0) return false;

  Tensor workspace =
      Tensor::empty({static_cast<int64_t>(kWorkspaceBytes)}, DType::kUInt8, c.device());
  const float alpha = ep.residual != nullptr ? 1.0f : p.alpha;
  const float beta = ep.residual != nullptr ? 1.0f : p.beta;
  const void* c_in = ep.residual != nullptr ? ep.residual->raw_data() : c.raw_data();
  SDLORA_CUBLAS_CHECK(cublasLtMatmul(handle, d.op, &alpha, b.raw_data(), d.a, a.raw_data(), d.b,
                                     &beta, c_in, d.c, c.raw_data(), d.d, &heuristic.algo,
                                     workspace.raw_data(), kWorkspaceBytes, stream(index)));
  return true;
}

}  // namespace sdlora::cuda
