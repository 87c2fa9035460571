// The kernel table: every kernel a backend implements, in one place. ops.cpp validates
// arguments, computes shapes, allocates outputs and calls these; a kernel may assume its
// tensors are contiguous, on its device, of matching shapes, and of a dtype it was promised
// below. The CPU backend (tensor/cpu/) is the readable reference; the CUDA backend
// (tensor/cuda/) is where speed lives. Float kernels see float32 and float64 on the CPU
// (bfloat16 is converted in ops.cpp), float32 and bfloat16 on CUDA, where the mixed-precision
// kernels named below read one float dtype and write another.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace sdlora {

constexpr int kMaxDims = 8;

enum class UnaryOp { kNeg, kExp, kLog, kSqrt, kTanh, kGelu };
enum class ScalarOp { kAdd, kSub, kRSub, kMul, kDiv, kRDiv, kPow };  // x op s (kRSub: s - x)
enum class BinaryOp { kAdd, kSub, kMul, kDiv };
enum class ReduceOp { kSum, kMean, kMax, kArgmax };

// Broadcast binary op: out index (i_0..i_{ndim-1}) reads a at sum i_d * a_stride[d] and b at
// sum i_d * b_stride[d] (element strides, 0 on broadcast dims). Dims are already collapsed.
struct BroadcastPlan {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t a_stride[kMaxDims] = {};
  int64_t b_stride[kMaxDims] = {};
  int64_t numel = 0;
};

// Row-major C[o][b] = alpha * op(A[o][b]) op(B[o][b]) + beta * C[o][b] for o < outer and
// b < batch, where A[o][b] starts at element o * outer_a + b * stride_a (0 = shared), op(A) is
// (m, k), op(B) is (k, n), C is (m, n). Leading dimensions (row pitch in elements of each matrix
// as stored: A (m, k), or (k, m) when transposed) of 0 mean packed rows. Strided plans (a leading
// dimension or outer > 1) come from matmul_view, which checks bounds and needs k > 0; the fused
// products (gemm_fused) take packed plans only.
struct GemmPlan {
  int64_t batch = 1, m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  float alpha = 1.0f, beta = 0.0f;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t outer = 1, outer_a = 0, outer_b = 0, outer_c = 0;

  int64_t ld_a() const { return lda ? lda : (trans_a ? m : k); }
  int64_t ld_b() const { return ldb ? ldb : (trans_b ? k : n); }
  int64_t ld_c() const { return ldc ? ldc : n; }
  bool strided() const { return lda || ldb || ldc || outer != 1; }
};

// What a fused product does around op(A) op(B) (cuBLASLt epilogues on CUDA, loops around
// OpenBLAS on the CPU); batch 1 only. With a residual, C = op(A) op(B) + residual (the residual
// is the product's C input, alpha and beta ignored); then the bias (n) is added to every row.
// bias_grad (m), when given, receives the sum over k of op(A) (cuBLASLt's BGRADB: the bias
// gradient of a weight-gradient product dW = dY^T X, read from dY as it is streamed).
struct GemmEpilogue {
  const Tensor* bias = nullptr;
  const Tensor* residual = nullptr;
  Tensor* bias_grad = nullptr;
};

// Per-channel normalisation of uint8 images: out = (x / 255 - mean[c]) * inv_std[c], or x / 255
// when !enabled (inv_std = 1 / std computed in float32, as the loader's host conversion does).
struct ImageNorm {
  static constexpr int kMaxChannels = 4;
  bool enabled = false;
  float mean[kMaxChannels] = {0, 0, 0, 0};
  float inv_std[kMaxChannels] = {1, 1, 1, 1};
};

// A tensor seen as (outer, n, inner), reduced or indexed along n.
struct AxisPlan {
  int64_t outer = 1, n = 1, inner = 1;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // creation: out any dtype
  virtual void fill(Tensor& out, double value) = 0;
  virtual void arange(Tensor& out, double start, double step) = 0;  // out[i] = start + i * step
  virtual void cast(const Tensor& x, Tensor& out) = 0;              // any dtype pair
  // out float; value i = (float) fma(hi - lo, philox_uniform(seed, offset, i), lo) in double.
  virtual void uniform(Tensor& out, uint64_t seed, uint64_t offset, double lo, double hi) = 0;
  // out float; value i = (float) fma(std, philox_normal(seed, offset, i), mean) in double.
  virtual void normal(Tensor& out, uint64_t seed, uint64_t offset, double mean, double std) = 0;

  // elementwise (float): out may alias x or a
  virtual void unary(UnaryOp op, const Tensor& x, Tensor& out) = 0;
  virtual void scalar(ScalarOp op, const Tensor& x, double s, Tensor& out) = 0;
  // binary: a, b and out one dtype on the CPU; on CUDA any mix of float32 and bfloat16
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const BroadcastPlan& plan,
                      Tensor& out) = 0;
  virtual void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) = 0;

  // matrix products (float; a, b, c one dtype, or bfloat16 a and b with a float32 c on CUDA)
  virtual void gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmPlan& plan) = 0;
  // fused products (cpu/fused_linear.cpp, cuda/fused_linear.cu): a, b one dtype, c that dtype or
  // float32 for bfloat16 a and b; bias, residual and bias_grad of c's dtype.
  virtual void gemm_fused(const Tensor& a, const Tensor& b, Tensor& c, const GemmPlan& plan,
                          const GemmEpilogue& epilogue) = 0;
  // dx = dy * gelu'(pre) (exact erf GELU) and db (cols) = the column sums of dx as stored, in one
  // pass over pre and dy seen as (rows, cols); db float32 or the dtype of dx.
  virtual void gelu_backward_bgrad(const Tensor& pre, const Tensor& dy, int64_t cols, Tensor& dx,
                                   Tensor& db) = 0;

  // reductions along n of x seen as (outer, n, inner) -> out (outer, inner); out dtype is x's,
  // int64 for kArgmax (on CUDA sum, mean and max may write the other float dtype).
  // Accumulation in float32 (float64 for float64 inputs) or better.
  virtual void reduce(ReduceOp op, const Tensor& x, const AxisPlan& plan, Tensor& out) = 0;

  // softmax over the last dim of x seen as (numel / cols, cols); log selects log-softmax
  virtual void softmax(const Tensor& x, int64_t cols, bool log, Tensor& out) = 0;
  virtual void softmax_backward(const Tensor& y, const Tensor& dy, int64_t cols, bool log,
                                Tensor& dx) = 0;

  // LayerNorm over the last dim (cols); mean and rstd float32 (rows)
  virtual void layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, int64_t cols,
                                 double eps, Tensor& y, Tensor& mean, Tensor& rstd) = 0;
  // dx written; dw and db (float dtype of w) written, not accumulated
  virtual void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                  const Tensor& mean, const Tensor& rstd, int64_t cols, Tensor& dx,
                                  Tensor& dw, Tensor& db) = 0;

  // dx only, for a LayerNorm whose weight and bias are frozen (cpu/fused_layernorm.cpp,
  // cuda/fused_layernorm.cu): w in x's dtype on the CPU, float32 on CUDA; dx = residual + the
  // LayerNorm's dx when `residual` is defined (x's shape and dtype)
  virtual void layernorm_backward_dx(const Tensor& dy, const Tensor& x, const Tensor& w,
                                     const Tensor& mean, const Tensor& rstd, int64_t cols,
                                     const Tensor& residual, Tensor& dx) = 0;

  // layout, any dtype
  virtual void permute(const Tensor& x, const std::vector<int64_t>& perm, Tensor& out) = 0;
  // rows x row_bytes bytes from src (row pitch src_pitch bytes) to dst (pitch dst_pitch)
  virtual void copy_2d(void* dst, int64_t dst_pitch, const void* src, int64_t src_pitch,
                       int64_t row_bytes, int64_t rows) = 0;
  // zeroes rows x row_bytes bytes of dst (row pitch `pitch` bytes)
  virtual void zero_2d(void* dst, int64_t pitch, int64_t row_bytes, int64_t rows) = 0;
  // x (outer, plan.n, inner) -> out (outer, index.numel(), inner); index int32/int64 in range
  virtual void index_select(const Tensor& x, const Tensor& index, const AxisPlan& plan,
                            Tensor& out) = 0;
  // dst (outer, plan.n, inner) += src (outer, index.numel(), inner) scattered by index (float)
  virtual void index_add(const Tensor& src, const Tensor& index, const AxisPlan& plan,
                         Tensor& dst) = 0;

  // losses: logits float (B, C), labels int32/int64 (B); loss float32 0-d; dloss float32 1 elem
  virtual void cross_entropy(const Tensor& logits, const Tensor& labels, Tensor& loss) = 0;
  virtual void cross_entropy_backward(const Tensor& logits, const Tensor& labels,
                                      const Tensor& dloss, Tensor& dlogits) = 0;

  // ViT patches (float): x (B, C, H, W) <-> patches (B, N, C p p)
  virtual void patchify(const Tensor& x, int64_t p, Tensor& out) = 0;
  virtual void unpatchify(const Tensor& patches, int64_t p, Tensor& out) = 0;
  // uint8 x (B, H, W, C) -> float32 out (B, C, H, W), normalised per channel.
  virtual void normalize_images(const Tensor& x, const ImageNorm& norm, Tensor& out) = 0;
};

Backend& cpu_backend();
#ifdef SDLORA_WITH_CUDA
Backend& cuda_backend();
#endif
// The backend for a device; throws for CUDA on a build without it.
Backend& backend_for(Device device);

}  // namespace sdlora
