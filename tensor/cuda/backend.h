// The CUDA backend: hand-written kernels, cuBLAS for matrix products. All work is queued on the
// device's compute stream; no kernel synchronises the host. Float kernels: float32, bfloat16.
#pragma once

#include "tensor/backend.h"

namespace sdlora::cuda {

class CudaBackend final : public Backend {
 public:
  // creation (creation.cu)
  void fill(Tensor& out, double value) override;
  void arange(Tensor& out, double start, double step) override;
  void cast(const Tensor& x, Tensor& out) override;
  void uniform(Tensor& out, uint64_t seed, uint64_t offset, double lo, double hi) override;
  void normal(Tensor& out, uint64_t seed, uint64_t offset, double mean, double std) override;
  // elementwise.cu
  void unary(UnaryOp op, const Tensor& x, Tensor& out) override;
  void scalar(ScalarOp op, const Tensor& x, double s, Tensor& out) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const BroadcastPlan& plan,
              Tensor& out) override;
  void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) override;
  // matmul.cu
  void gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmPlan& plan) override;
  // fused_linear.cu
  void gemm_fused(const Tensor& a, const Tensor& b, Tensor& c, const GemmPlan& plan,
                  const GemmEpilogue& epilogue) override;
  void gelu_backward_bgrad(const Tensor& pre, const Tensor& dy, int64_t cols, Tensor& dx,
                           Tensor& db) override;
  // reduce.cu
  void reduce(ReduceOp op, const Tensor& x, const AxisPlan& plan, Tensor& out) override;
  // softmax.cu
  void softmax(const Tensor& x, int64_t cols, bool log, Tensor& out) override;
  void softmax_backward(const Tensor& y, const Tensor& dy, int64_t cols, bool log,
                        Tensor& dx) override;
  // layernorm.cu
  void layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, int64_t cols,
                         double eps, Tensor& y, Tensor& mean, Tensor& rstd) override;
  void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean,
                          const Tensor& rstd, int64_t cols, Tensor& dx, Tensor& dw,
                          Tensor& db) override;
  // fused_layernorm.cu
  void layernorm_backward_dx(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean,
                             const Tensor& rstd, int64_t cols, const Tensor& residual,
                             Tensor& dx) override;
  // layout.cu
  void permute(const Tensor& x, const std::vector<int64_t>& perm, Tensor& out) override;
  void copy_2d(void* dst, int64_t dst_pitch, const void* src, int64_t src_pitch, int64_t row_bytes,
               int64_t rows) override;
  void zero_2d(void* dst, int64_t pitch, int64_t row_bytes, int64_t rows) override;
  void index_select(const Tensor& x, const Tensor& index, const AxisPlan& plan,
                    Tensor& out) override;
  void index_add(const Tensor& src, const Tensor& index, const AxisPlan& plan,
                 Tensor& dst) override;
  // loss.cu
  void cross_entropy(const Tensor& logits, const Tensor& labels, Tensor& loss) override;
  void cross_entropy_backward(const Tensor& logits, const Tensor& labels, const Tensor& dloss,
                              Tensor& dlogits) override;
  // patch.cu
  void patchify(const Tensor& x, int64_t p, Tensor& out) override;
  void unpatchify(const Tensor& patches, int64_t p, Tensor& out) override;
  void normalize_images(const Tensor& x, const ImageNorm& norm, Tensor& out) override;
};

}  // namespace sdlora::cuda
