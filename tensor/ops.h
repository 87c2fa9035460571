// The tensor operations. Each dispatches on its inputs' device to the CPU or CUDA backend
// (tensor/backend.h lists the kernels each backend implements). Inputs must share one device;
// results are new contiguous tensors on that device unless the name ends in an underscore
// (in place). Float ops take float32, bfloat16 (on the CPU computed in float32) and float64
// (CPU only, for gradient checks); statistics (LayerNorm mean/rstd, losses) are float32.
// Operands share one dtype (no promotion), except the mixed-precision forms that name their
// output dtype (`out`): float32 and bfloat16 operands in any mix, the cast fused in the kernel.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace sdlora {

// ---- creation and conversion
void fill_(Tensor& t, double value);  // any dtype
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::kInt64,
              Device device = Device::cpu());  // [start, end)
Tensor cast(const Tensor& x, DType dtype);     // any -> any

// ---- matrix products (cuBLAS on CUDA, OpenBLAS on the CPU)
// a (..., M, K) [(..., K, M) if trans_a], b (..., K, N) [(..., N, K) if trans_b] -> (..., M, N).
// Batch dims must match, or either side may be 2-D and is then shared by every batch.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// Mixed precision: bfloat16 a and b with a float32 (or bfloat16) result, float32 accumulation.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b, DType out);
// c = alpha * op(a) op(b) + beta * c, in place; c has the shape matmul would return and the
// dtype of a and b, or float32 when they are bfloat16.
void matmul_out(const Tensor& a, const Tensor& b, Tensor& c, bool trans_a = false,
                bool trans_b = false, float alpha = 1.0f, float beta = 0.0f);

// ---- matrix products on strided views (ops_matmul.cpp): attention reads q, k and v in place
// from the qkv output and writes its heads' layout directly, with no permute or slice copies.
// Matrix (o, b) of a view has element (i, j) at flat index
//   offset + o * outer_stride + b * batch_stride + i * ld + j
// of base (any contiguous tensor); rows and cols are as stored, before any transpose.
struct MatrixView {
  Tensor base;
  int64_t offset = 0, rows = 0, cols = 0, ld = 0;
  int64_t outer_stride = 0, batch_stride = 0;  // 0: one matrix shared by that batch level
};
// c = alpha op(a) op(b) + beta c for outer x batch matrices, written in place into c's base (only
// c's elements change). a, b share a dtype; c has it, or float32 for bfloat16 a and b. Every
// view must lie inside its base; c's batch strides may not be 0 over more than one matrix, and
// c must not overlap a or b. op(a) is (m, k) with k > 0, op(b) (k, n), c (m, n).
void matmul_view(const MatrixView& a, bool trans_a, const MatrixView& b, bool trans_b,
                 const MatrixView& c, int64_t outer, int64_t batch, float alpha = 1.0f,
                 float beta = 0.0f);

// ---- fused attention over qkv (B, N, 3C) = [q | k | v] with `heads` heads (ops_attention.cpp):
// cuDNN's SDPA on CUDA bfloat16 for supported shapes in builds with cudnn-frontend; elsewhere
// fused_attention_available is false and attention runs as strided products (autograd's
// attention_qkv). Scale 1 / sqrt(C / heads).
bool fused_attention_available(const Tensor& qkv, int64_t heads);
struct FusedAttentionOut {
  Tensor o;      // (B, N, C) in the token layout
  Tensor stats;  // (B, heads, N, 1) float32: each score row's log-sum-exp, for backward
};
FusedAttentionOut fused_attention(const Tensor& qkv, int64_t heads);
// dqkv (B, N, 3C) from o, its gradient d_o and stats.
Tensor fused_attention_backward(const Tensor& qkv, const Tensor& o, const Tensor& d_o,
                                const Tensor& stats, int64_t heads);
// Prints "sdlora: attention path: <path>" on stderr the first time a path is named.
void note_attention_path(const std::string& path);

// ---- fused linear layers: one product and its epilogue (cuBLASLt epilogues on CUDA; on the CPU
// the same steps as loops around OpenBLAS, which define the semantics). tensor/ops_linear.cpp.
// x (..., K), w (N, K), b (N) or undefined, residual (..., N) or undefined -> (..., N):
// (x w^T + residual) + b, the residual being the product's C input. x, w and the residual share
// a dtype; b is float32 or that dtype.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& residual = Tensor());
struct LinearGeluOut {
  Tensor y;    // gelu(pre), exact erf GELU
  Tensor pre;  // x w^T + b, kept for backward
};
LinearGeluOut linear_gelu(const Tensor& x, const Tensor& w, const Tensor& b);
// Which gradients of y = x w^T + b to compute, and their dtypes (mixed precision: each input's
// gradient in its own dtype). Frozen inputs ask for none.
struct LinearGradRequest {
  bool dx = false, dw = false, db = false;
  DType dx_dtype = DType::kFloat32, dw_dtype = DType::kFloat32, db_dtype = DType::kFloat32;
};
struct LinearGrads {
  Tensor dx;  // dy w: (..., K)
  Tensor dw;  // dy^T x over the flattened rows: (N, K)
  Tensor db;  // the row sums of dy: (N); read in the dw product when both are asked (BGRADB)
};
// dy (..., N); x is needed only for dw, w only for dx.
LinearGrads linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                            const LinearGradRequest& want);
struct GeluBgradOut {
  Tensor dx;  // dy * gelu'(pre), dtype of pre
  Tensor db;  // (C) column sums of dx as stored, dtype db_dtype
};
// pre, dy (..., C): the GELU backward and the bias gradient of the product before it, one pass.
GeluBgradOut gelu_backward_bgrad(const Tensor& pre, const Tensor& dy, DType db_dtype);

// ---- elementwise, with numpy broadcasting for the binary forms
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
// The same with float32 / bfloat16 operands in any mix, computed in float32, written as `out`.
Tensor add(const Tensor& a, const Tensor& b, DType out);
Tensor sub(const Tensor& a, const Tensor& b, DType out);
Tensor mul(const Tensor& a, const Tensor& b, DType out);
Tensor div(const Tensor& a, const Tensor& b, DType out);
Tensor add(const Tensor& a, double s);   // a + s
Tensor sub(const Tensor& a, double s);   // a - s
Tensor rsub(double s, const Tensor& a);  // s - a
Tensor mul(const Tensor& a, double s);   // a * s
Tensor div(const Tensor& a, double s);   // a / s
Tensor rdiv(double s, const Tensor& a);  // s / a
Tensor pow(const Tensor& a, double p);   // a ^ p
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor gelu(const Tensor& x);                             // 0.5 x (1 + erf(x / sqrt 2)), exact
Tensor gelu_backward(const Tensor& x, const Tensor& dy);  // dy * gelu'(x)
// a += alpha * b (b broadcast to a; b may be float32 or bfloat16 whatever a's float dtype is)
void add_(Tensor& a, const Tensor& b, double alpha = 1.0);
void mul_(Tensor& a, double s);  // a *= s

// ---- reductions; dim may be negative. The all-element forms return a 0-d tensor.
Tensor sum(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor mean(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);  // int64; first maximum
// Sum and mean written as `out` (float32 <-> bfloat16), accumulated in float32 or better.
Tensor sum(const Tensor& x, int64_t dim, bool keepdim, DType out);
Tensor sum(const Tensor& x, DType out);
Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);
Tensor max(const Tensor& x);
Tensor argmax(const Tensor& x);  // int64 index into the flattened tensor

// ---- softmax over the last dimension
Tensor softmax(const Tensor& x);                                 // (..., C) -> (..., C)
Tensor log_softmax(const Tensor& x);                             // (..., C) -> (..., C)
Tensor softmax_backward(const Tensor& y, const Tensor& dy);      // y = softmax(x): dy -> dx
Tensor log_softmax_backward(const Tensor& y, const Tensor& dy);  // y = log_softmax(x): dy -> dx

// ---- LayerNorm over the last dimension
struct LayerNormOut {
  Tensor y;     // (..., C), dtype of x
  Tensor mean;  // (rows) float32
  Tensor rstd;  // (rows) float32, 1 / sqrt(var + eps), biased variance
};
// x (..., C), w (C), b (C)
LayerNormOut layernorm(const Tensor& x, const Tensor& w, const Tensor& b, double eps);
struct LayerNormGrads {
  Tensor dx;  // (..., C)
  Tensor dw;  // (C)
  Tensor db;  // (C)
};
LayerNormGrads layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                  const Tensor& mean, const Tensor& rstd);
// dx alone, for a LayerNorm whose weight and bias are frozen: no dw / db sums over the rows.
// dx agrees with layernorm_backward's to float rounding (tensor/ops_fused_norm.cpp). With
// `residual` (x's shape and dtype): residual + dx in the same pass, the gradient the residual
// stream already carries folded in (a pre-norm block's x feeds both the LayerNorm and the
// residual add), so no separate add reads and writes the whole activation again.
Tensor layernorm_backward_dx(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean,
                             const Tensor& rstd, const Tensor& residual = Tensor());

// ---- layout (materialising)
Tensor permute(const Tensor& x, const std::vector<int64_t>& perm);
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end);  // [start, end) of dim
// dst[.., start : start + src.size(dim), ..] = src (the adjoint of slice, in place).
void slice_set_(Tensor& dst, int64_t dim, int64_t start, const Tensor& src);
// The adjoint of slice as a new tensor: `shape`, with dy in [start, start + dy.size(dim)) of dim
// and zeros elsewhere; every element is written once (no zeros-then-copy).
Tensor slice_backward(const Tensor& dy, const Shape& shape, int64_t dim, int64_t start);
// index 1-D int32/int64: out has index.numel() entries along dim, out[.., i, ..] = x[.., index[i],
// ..].
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// The adjoint: dst[.., index[i], ..] += src[.., i, ..] (repeated indices accumulate).
void index_add_(Tensor& dst, int64_t dim, const Tensor& index, const Tensor& src);

// ---- losses
// logits (B, C), labels (B) int32/int64 in [0, C) -> float32 0-d tensor: mean over B of
// -log softmax(logits)[label].
Tensor cross_entropy(const Tensor& logits, const Tensor& labels);
// The gradient of that loss times dloss (a one-element float32 tensor on the same device, so no
// host synchronisation): (softmax(logits) - onehot(labels)) * dloss / B, dtype of logits.
Tensor cross_entropy_backward(const Tensor& logits, const Tensor& labels, const Tensor& dloss);

// ---- ViT patches
// x (B, C, H, W) -> (B, (H/p)(W/p), C p p): patches in row-major grid order, each flattened in
// (c, i, j) order, so a conv with stride p is patchify(x) @ weight.reshape(D, C p p)^T.
Tensor patchify(const Tensor& x, int64_t p);
// The adjoint: (B, N, C p p) -> (B, C, H, W).
Tensor unpatchify(const Tensor& patches, int64_t channels, int64_t height, int64_t width,
                  int64_t p);

// ---- Input images
// uint8 images (B, H, W, C) as decoded -> float32 (B, C, H, W) on the same device: x / 255, then
// (x - mean[c]) / std[c] when mean and std are given (one per channel, C <= 4), computed exactly
// as the loader's host conversion (data/transforms.h image_to_chw), so a batch normalised on the
// GPU equals the one normalised on the host.
Tensor normalize_images(const Tensor& images, const std::vector<float>& mean,
                        const std::vector<float>& std);

// ---- CUDA settings (no-ops on CPU-only builds)
void set_allow_tf32(bool allow);  // TF32 tensor cores for float32 products on CUDA
bool allow_tf32();

}  // namespace sdlora
