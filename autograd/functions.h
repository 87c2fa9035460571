// Differentiable ops on Vars: the same names as the tensor ops (tensor/ops.h), recorded for
// backward() when grad is enabled and an input requires grad. Each op is one graph node whose
// backward returns the inputs' gradients, which the engine ACCUMULATES (+=) into theirs.
// Primitive rules live in functions.cpp; fused ops with hand-written backward in fused.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/var.h"

namespace sdlora {

// ---- matrix products
// a (..., M, K) [(..., K, M) if trans_a], b (..., K, N) [(..., N, K) if trans_b] -> (..., M, N);
// a 2-D operand is shared by every batch (its gradient sums over the batch).
Var matmul(const Var& a, const Var& b, bool trans_a = false, bool trans_b = false);
// x (..., in), w (out, in), b (out) or undefined -> (..., out) = x w^T + b. Fused node.
Var linear(const Var& x, const Var& w, const Var& b = Var());
// The same plus a residual (..., out): (x w^T + residual) + b, the residual being the product's
// C input (no separate add). Fused node; the residual's gradient is dy.
Var linear(const Var& x, const Var& w, const Var& b, const Var& residual);
// gelu(x w^T + b), exact erf GELU, keeping the pre-activation for backward; the bias gradient
// comes from the GELU backward's pass. Fused node.
Var linear_gelu(const Var& x, const Var& w, const Var& b = Var());

// y (..., Ny) += for each part: t[..., t_begin : t_begin + r] up^T into y's columns
// [col, col + d), up (d, r), t (..., R) with y's leading dimensions and dtype (up may be float32
// under bfloat16). Updated IN PLACE: the result shares y's memory, so y must be an intermediate
// no other node reads (the qkv product's output, before attention); its gradient passes through.
// Parts read disjoint columns of t. One fused node (autograd/fused_lowrank.cpp).
struct LowRankColumns {
  int64_t col = 0, t_begin = 0;
  Var up;
};
Var add_lowrank_columns_(const Var& y, const Var& t, const std::vector<LowRankColumns>& parts);

// ---- elementwise, numpy broadcasting (gradients summed back to each input's shape)
Var add(const Var& a, const Var& b);
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var div(const Var& a, const Var& b);
Var add(const Var& a, double s);   // a + s
Var sub(const Var& a, double s);   // a - s
Var rsub(double s, const Var& a);  // s - a
Var mul(const Var& a, double s);   // a * s
Var div(const Var& a, double s);   // a / s
Var rdiv(double s, const Var& a);  // s / a
Var pow(const Var& a, double p);   // a ^ p
Var neg(const Var& x);
Var exp(const Var& x);
Var log(const Var& x);
Var sqrt(const Var& x);
Var tanh(const Var& x);
Var gelu(const Var& x);  // exact erf GELU
// x (any shape) times the one-element s (the SD-LoRA magnitudes): dx = dy s, ds = sum(dy x).
Var scale(const Var& x, const Var& s);

inline Var operator+(const Var& a, const Var& b) { return add(a, b); }
inline Var operator-(const Var& a, const Var& b) { return sub(a, b); }
inline Var operator*(const Var& a, const Var& b) { return mul(a, b); }
inline Var operator/(const Var& a, const Var& b) { return div(a, b); }
inline Var operator+(const Var& a, double s) { return add(a, s); }
inline Var operator-(const Var& a, double s) { return sub(a, s); }
inline Var operator*(const Var& a, double s) { return mul(a, s); }
inline Var operator/(const Var& a, double s) { return div(a, s); }
inline Var operator+(double s, const Var& a) { return add(a, s); }
inline Var operator-(double s, const Var& a) { return rsub(s, a); }
inline Var operator*(double s, const Var& a) { return mul(a, s); }
inline Var operator/(double s, const Var& a) { return rdiv(s, a); }
inline Var operator-(const Var& x) { return neg(x); }

// ---- reductions; dim may be negative; the all-element forms return a 0-d Var
Var sum(const Var& x);
Var sum(const Var& x, int64_t dim, bool keepdim = false);
Var mean(const Var& x);
Var mean(const Var& x, int64_t dim, bool keepdim = false);
// The gradient goes to the first maximum (keep the inputs' maxima well separated in checks).
Var max(const Var& x);
Var max(const Var& x, int64_t dim, bool keepdim = false);

// ---- softmax and normalisation over the last dimension
Var softmax(const Var& x);
Var log_softmax(const Var& x);
// x (..., C), w (C), b (C) -> (..., C). Fused node (saves x, w and the row statistics).
Var layernorm(const Var& x, const Var& w, const Var& b, double eps);

// ---- attention
// q (B, H, Nq, D), k (B, H, Nk, D), v (B, H, Nk, Dv) -> (B, H, Nq, Dv):
// softmax(q k^T * scale) v with scale = 1 / sqrt(D). One fused node (saves q, k, v and P).
Var attention(const Var& q, const Var& k, const Var& v);
// The same over qkv (B, N, 3C) = [q | k | v], each C = heads heads of C / heads -> (B, N, C) in
// the token layout: the heads read in place from qkv and written in place (strided products, no
// permute copies); the gradient is one (B, N, 3C) buffer. One fused node (saves qkv and P).
Var attention_qkv(const Var& qkv, int64_t heads);

// ---- losses
// logits (B, C), labels (B) int32/int64 -> 0-d: the batch mean of -log softmax(logits)[label].
// float32 for float32 and bfloat16 logits, float64 for float64 logits.
Var cross_entropy(const Var& logits, const Tensor& labels);
// The same over the columns [col_begin, col_end) only, with labels shifted by -col_begin (every
// label must fall in the range): the "current task's classes" loss. Columns outside the range
// get zero gradient.
Var cross_entropy(const Var& logits, const Tensor& labels, int64_t col_begin, int64_t col_end);

// ---- layout
Var reshape(const Var& x, const Shape& shape);  // a view of the value; one -1 allowed
Var permute(const Var& x, const std::vector<int64_t>& perm);
Var transpose(const Var& x, int64_t d0, int64_t d1);
Var cat(const std::vector<Var>& xs, int64_t dim);
Var slice(const Var& x, int64_t dim, int64_t start, int64_t end);  // [start, end) of dim
Var index_select(const Var& x, int64_t dim, const Tensor& index);
Var broadcast_to(const Var& x, const Shape& shape);  // numpy broadcasting, materialised
Var cast(const Var& x, DType dtype);                 // float -> float; gradient cast back
// x (B, C, H, W) -> (B, (H/p)(W/p), C p p), as tensor/ops.h's patchify.
Var patchify(const Var& x, int64_t p);

}  // namespace sdlora
