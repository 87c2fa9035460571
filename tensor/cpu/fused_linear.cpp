// CPU fused linear kernels: the reference semantics of the CUDA epilogues. A product with the
// residual as its C input, then the bias; the bias gradient of a weight-gradient product; the
// exact GELU backward (the unfused kernel's) with the column sums of its result.
#include <vector>

#include "tensor/cpu/backend.h"
#include "tensor/cpu/parallel.h"

namespace sdlora::cpu {

void CpuBackend::gemm_fused(const Tensor& a, const Tensor& b, Tensor& c, const GemmPlan& plan,
                            const GemmEpilogue& ep) {
  SDLORA_CHECK(plan.batch == 1, "cpu gemm_fused: batch 1 only, got ", plan.batch);
  GemmPlan p = plan;
  if (ep.residual != nullptr) {  // C = op(A) op(B) + residual
    c.copy_(*ep.residual);
    p.alpha = 1.0f;
    p.beta = 1.0f;
  }
  gemm(a, b, c, p);
  dispatch_float(c.dtype(), "gemm_fused", [&](auto tag) {
    using T = decltype(tag);
    const int64_t m = p.m, n = p.n, k = p.k;
    if (ep.bias != nullptr) {  // y[i, j] += bias[j], after the product as the unfused add
      const T* bp = ep.bias->data<T>();
      T* cp = c.data<T>();
      SDLORA_OMP_FOR(m * n)
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) cp[i * n + j] += bp[j];
    }
    if (ep.bias_grad != nullptr) {  // db[i] = sum_k op(A)[i, k]; A is (m, k), or (k, m) if trans
      const T* ap = a.data<T>();
      T* db = ep.bias_grad->data<T>();
      using Acc = double;  // the reductions' float32-or-better accumulation
      if (p.trans_a) {
        std::vector<Acc> acc(static_cast<size_t>(m), Acc(0));
        for (int64_t r = 0; r < k; ++r)
          for (int64_t i = 0; i < m; ++i) acc[static_cast<size_t>(i)] += ap[r * m + i];
        for (int64_t i = 0; i < m; ++i) db[i] = static_cast<T>(acc[static_cast<size_t>(i)]);
      } else {
        SDLORA_OMP_FOR(m * k)
        for (int64_t i = 0; i < m; ++i) {
          Acc acc = 0;
          for (int64_t r = 0; r < k; ++r) acc += ap[i * k + r];
          db[i] = static_cast<T>(acc);
        }
      }
    }
  });
}

// dx from the unfused kernel itself (so the two are bit-identical), then the column sums.
void CpuBackend::gelu_backward_bgrad(const Tensor& pre, const Tensor& dy, int64_t cols, Tensor& dx,
                                     Tensor& db) {
  gelu_backward(pre, dy, dx);
  dispatch_float(pre.dtype(), "gelu_backward_bgrad", [&](auto tag) {
    using T = decltype(tag);
    const T* o = dx.data<T>();
    T* dbp = db.data<T>();
    const int64_t rows = cols == 0 ? 0 : pre.numel() / cols;
    std::vector<double> acc(static_cast<size_t>(cols), 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; ++j) acc[static_cast<size_t>(j)] += o[r * cols + j];
    for (int64_t j = 0; j < cols; ++j) dbp[j] = static_cast<T>(acc[static_cast<size_t>(j)]);
  });
}

}  // namespace sdlora::cpu
