// Fused differentiable ops with hand-written backward: linear (+bias, +residual), linear + GELU,
// the scalar-magnitude scale, LayerNorm, scaled-dot-product attention (on separate q, k, v, or read
// in place from the qkv output) and cross-entropy over a column range.
#include <cmath>

#include "autograd/functions.h"
#include "autograd/node.h"
#include "tensor/ops.h"

namespace sdlora {

// ---- linear: y = (x w^T + residual) + b over x (..., in), w (out, in), b (out), residual
// (..., out), one fused tensor op (the bias and the residual in the product's epilogue)
//   dx = dy w;  dw = dy^T x (rows flattened);  db = sum_rows dy (read in the dw product);
//   dresidual = dy
// Mixed precision (node.h): a float32 / bfloat16 pair of x and w computes on bfloat16; dx, dw
// and db come back in the dtypes of x, w and b. Frozen inputs cost nothing: no gradient is
// computed and nothing is saved for it (x only for dw, w only for dx).
namespace {

class LinearNode final : public Node {
 public:
  LinearNode(std::vector<Edge> edges, Tensor x, Tensor w, LinearGradRequest want, int bias_at,
             int residual_at, DType residual_dtype)
      : Node("linear", std::move(edges)),
        want_(want),
        bias_at_(bias_at),
        residual_at_(residual_at),
        residual_dtype_(residual_dtype) {
    want_.dx = needs_grad(0);
    want_.dw = needs_grad(1);
    want_.db = bias_at_ >= 0 && needs_grad(static_cast<size_t>(bias_at_));
    if (want_.dw) x_ = std::move(x);
    if (want_.dx) w_ = std::move(w);
  }

  std::vector<Tensor> backward(const Tensor& dy) override {
    std::vector<Tensor> g(num_inputs());
    LinearGrads r = linear_backward(dy, x_, w_, want_);
    g[0] = std::move(r.dx);
    g[1] = std::move(r.dw);
    if (want_.db) g[static_cast<size_t>(bias_at_)] = std::move(r.db);
    if (residual_at_ >= 0 && needs_grad(static_cast<size_t>(residual_at_)))
      g[static_cast<size_t>(residual_at_)] = as_dtype(dy, residual_dtype_);
    return g;
  }
  void release_saved() override { x_ = w_ = Tensor(); }

 private:
  Tensor x_, w_;
  LinearGradRequest want_;
  int bias_at_, residual_at_;
  DType residual_dtype_;
};

// pre = x w^T + b, y = gelu(pre); saves pre, and x and w as LinearNode does.
//   dpre = dy gelu'(pre) with db = sum_rows dpre in the same pass; then as linear.
class LinearGeluNode final : public Node {
 public:
  LinearGeluNode(std::vector<Edge> edges, Tensor x, Tensor w, Tensor pre, LinearGradRequest want)
      : Node("linear_gelu", std::move(edges)), pre_(std::move(pre)), want_(want) {
    want_.dx = needs_grad(0);
    want_.dw = needs_grad(1);
    want_.db = num_inputs() > 2 && needs_grad(2);
    if (want_.dw) x_ = std::move(x);
    if (want_.dx) w_ = std::move(w);
  }

  std::vector<Tensor> backward(const Tensor& dy) override {
    std::vector<Tensor> g(num_inputs());
    Tensor dpre;
    if (want_.db) {
      GeluBgradOut r = gelu_backward_bgrad(pre_, dy, want_.db_dtype);
      dpre = std::move(r.dx);
      g[2] = std::move(r.db);
    } else {
      dpre = gelu_backward(pre_, dy);
    }
    LinearGradRequest q = want_;
    q.db = false;
    LinearGrads r = linear_backward(dpre, x_, w_, q);
    g[0] = std::move(r.dx);
    g[1] = std::move(r.dw);
    return g;
  }
  void release_saved() override { x_ = w_ = pre_ = Tensor(); }

 private:
  Tensor x_, w_, pre_;
  LinearGradRequest want_;
};

void check_linear_args(const Var& x, const Var& w, const Var& b, const char* op) {
  SDLORA_CHECK(x.defined() && w.defined(), op, ": x and weight must be defined");
  SDLORA_CHECK(x.ndim() >= 2 && w.ndim() == 2 && x.size(-1) == w.size(1), op, ": x ",
               x.data().describe(), " and weight ", w.data().describe(),
               " should be (..., in) and (out, in)");
  if (b.defined())
    SDLORA_CHECK(b.shape() == Shape{w.size(0)}, op, ": bias ", b.describe(), " should be [",
                 w.size(0), "] for weight ", w.describe());
}

}  // namespace

Var linear(const Var& x, const Var& w, const Var& b, const Var& residual) {
  check_linear_args(x, w, b, "linear");
  const DType cd = compute_dtype(x.data(), w.data());
  const Tensor X = as_dtype(x.data(), cd), W = as_dtype(w.data(), cd);
  const Tensor R = residual.defined() ? as_dtype(residual.data(), cd) : Tensor();
  Tensor Y = linear(X, W, b.defined() ? b.data() : Tensor(), R);
  std::vector<Var> inputs{x, w};
  int bias_at = -1, residual_at = -1;
  LinearGradRequest want;
  want.dx_dtype = x.dtype();
  want.dw_dtype = w.dtype();
  if (b.defined()) {
    bias_at = static_cast<int>(inputs.size());
    inputs.push_back(b);
    want.db_dtype = b.dtype();
  }
  DType residual_dtype = cd;
  if (residual.defined()) {
    residual_at = static_cast<int>(inputs.size());
    inputs.push_back(residual);
    residual_dtype = residual.dtype();
  }
  return record_node<LinearNode>(std::move(Y), inputs, X, W, want, bias_at, residual_at,
                                 residual_dtype);
}

Var linear(const Var& x, const Var& w, const Var& b) { return linear(x, w, b, Var()); }

Var linear_gelu(const Var& x, const Var& w, const Var& b) {
  check_linear_args(x, w, b, "linear_gelu");
  const DType cd = compute_dtype(x.data(), w.data());
  const Tensor X = as_dtype(x.data(), cd), W = as_dtype(w.data(), cd);
  LinearGeluOut r = linear_gelu(X, W, b.defined() ? b.data() : Tensor());
  LinearGradRequest want;
  want.dx_dtype = x.dtype();
  want.dw_dtype = w.dtype();
  std::vector<Var> inputs{x, w};
  if (b.defined()) {
    inputs.push_back(b);
    want.db_dtype = b.dtype();
  }
  return record_node<LinearGeluNode>(std::move(r.y), inputs, X, W, std::move(r.pre), want);
}

// ---- scale: y = x s with s one element (a learnable magnitude)
//   dx = dy s;  ds = sum(dy x)
// x may be bfloat16 with a float32 s: y and dx keep x's dtype, ds is s's dtype (float32 sums).
Var scale(const Var& x, const Var& s) {
  SDLORA_CHECK(s.numel() == 1, "scale: s should have one element, got ", s.describe());
  const Tensor X = x.data(), S = s.data().reshape({});
  const Shape ss = s.shape();
  const DType xt = X.dtype(), st = S.dtype();
  if (xt != st) compute_dtype(X, S);  // checks the pair
  const DType acc = xt == st ? xt : DType::kFloat32;
  return record("scale", mul(X, S, xt), {x, s},
                {[=](const Tensor& dy) { return mul(dy, S, xt); },
                 [=](const Tensor& dy) { return sum(mul(dy, X, acc), st).reshape(ss); }});
}

// ---- LayerNorm over the last dimension: the tensor library's kernels give all three gradients,
// or dx alone when the weight and bias are frozen
namespace {
class LayerNormNode final : public Node {
 public:
  LayerNormNode(std::vector<Edge> edges, Tensor x, Tensor w, Tensor mean, Tensor rstd)
      : Node("layernorm", std::move(edges)),
        x_(std::move(x)),
        w_(std::move(w)),
        mean_(std::move(mean)),
        rstd_(std::move(rstd)) {}

  std::vector<Tensor> backward(const Tensor& dy) override {
    if (frozen())  // dx alone, with x's other gradient (the residual stream's) folded in
      return {layernorm_backward_dx(dy, x_, w_, mean_, rstd_, residual_), Tensor(), Tensor()};
    LayerNormGrads g = layernorm_backward(dy, x_, w_, mean_, rstd_);
    return {needs_grad(0) ? g.dx : Tensor(), needs_grad(1) ? g.dw : Tensor(),
            needs_grad(2) ? g.db : Tensor()};
  }
  bool folds(size_t input) const override { return input == 0 && frozen(); }
  void fold(size_t, Tensor pending) override { residual_ = std::move(pending); }
  void release_saved() override { x_ = w_ = mean_ = rstd_ = residual_ = Tensor(); }

 private:
  bool frozen() const { return needs_grad(0) && !needs_grad(1) && !needs_grad(2); }
  Tensor x_, w_, mean_, rstd_;
  Tensor residual_;  // x's gradient from its other consumers, when the engine folded it in
};
}  // namespace

Var layernorm(const Var& x, const Var& w, const Var& b, double eps) {
  LayerNormOut r = layernorm(x.data(), w.data(), b.data(), eps);
  return record_node<LayerNormNode>(std::move(r.y), {x, w, b}, x.data(), w.data(),
                                    std::move(r.mean), std::move(r.rstd));
}

// ---- attention over heads: S = q k^T scale, P = softmax(S), O = P v
//   dv = P^T dO;  dP = dO v^T;  dS = softmax_backward(P, dP);  dq = dS k scale;  dk = dS^T q scale
namespace {
class AttentionNode final : public Node {
 public:
  AttentionNode(std::vector<Edge> edges, Tensor q, Tensor k, Tensor v, Tensor p, double scale)
      : Node("attention", std::move(edges)), scale_(scale) {
    // P serves every gradient; q only dk, k only dq, v both.
    const bool dq = needs_grad(0), dk = needs_grad(1);
    if (dk) q_ = std::move(q);
    if (dq) k_ = std::move(k);
    if (dq || dk) v_ = std::move(v);
    p_ = std::move(p);
  }

  std::vector<Tensor> backward(const Tensor& dO) override {
    std::vector<Tensor> g(3);
    if (needs_grad(2)) g[2] = matmul(p_, dO, true, false);
    if (needs_grad(0) || needs_grad(1)) {
      const Tensor dS = softmax_backward(p_, matmul(dO, v_, false, true));
      const float s = static_cast<float>(scale_);
      if (needs_grad(0)) {
        g[0] = Tensor::empty({dS.size(0), dS.size(1), dS.size(2), k_.size(3)}, dS.dtype(),
                             dS.device());
        matmul_out(dS, k_, g[0], false, false, s);
      }
      if (needs_grad(1)) {
        g[1] = Tensor::empty({dS.size(0), dS.size(1), dS.size(3), q_.size(3)}, dS.dtype(),
                             dS.device());
        matmul_out(dS, q_, g[1], true, false, s);
      }
    }
    return g;
  }
  void release_saved() override { q_ = k_ = v_ = p_ = Tensor(); }

 private:
  Tensor q_, k_, v_, p_;
  double scale_;
};
}  // namespace

Var attention(const Var& q, const Var& k, const Var& v) {
  const Tensor Q = q.data(), K = k.data(), V = v.data();
  SDLORA_CHECK(Q.ndim() == 4 && K.ndim() == 4 && V.ndim() == 4, "attention: q ", Q.describe(),
               ", k ", K.describe(), " and v ", V.describe(), " should be (B, H, N, D)");
  const int64_t B = Q.size(0), H = Q.size(1), Nq = Q.size(2), D = Q.size(3), Nk = K.size(2);
  SDLORA_CHECK(K.size(0) == B && K.size(1) == H && K.size(3) == D && V.size(0) == B &&
                   V.size(1) == H && V.size(2) == Nk,
               "attention: shapes do not fit: q ", Q.describe(), ", k ", K.describe(), ", v ",
               V.describe());
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  Tensor S = Tensor::empty({B, H, Nq, Nk}, Q.dtype(), Q.device());
  matmul_out(Q, K, S, false, true, static_cast<float>(scale));
  Tensor P = softmax(S);
  S = Tensor();
  Tensor O = matmul(P, V);
  return record_node<AttentionNode>(std::move(O), {q, k, v}, Q, K, V, std::move(P), scale);
}

// ---- attention read from the qkv product's output and written in the token layout: qkv
// (B, N, 3C) holds q, k and v side by side, each C = H heads of hd; head h of image b is the
// (N, hd) matrix at column part * C + h * hd with row pitch 3C. The products read those views in
// place (matmul_view) and write O as (B, N, H, hd) = (B, N, C), so no permute or slice copies;
// the gradient dqkv is one (B, N, 3C) buffer whose three column windows the three gradient
// products write (every element once, no zeros).
namespace {

struct QkvLayout {
  int64_t B, N, H, hd, C;
  // Head views of part 0 (q), 1 (k), 2 (v) of a (B, N, 3C) tensor; outer level heads, batch images.
  MatrixView part(const Tensor& base, int64_t p) const {
    return MatrixView{base, p * C, N, hd, 3 * C, hd, N * 3 * C};
  }
  MatrixView tokens(const Tensor& base) const {  // (B, N, C) in heads: the output and dO
    return MatrixView{base, 0, N, hd, C, hd, N * C};
  }
  MatrixView scores(const Tensor& base) const {  // (B, H, N, N)
    return MatrixView{base, 0, N, N, N, N * N, H * N * N};
  }
};

class AttentionQkvNode final : public Node {
 public:
  AttentionQkvNode(std::vector<Edge> edges, Tensor qkv, Tensor p, QkvLayout l, double scale)
      : Node("attention_qkv", std::move(edges)),
        qkv_(std::move(qkv)),
        p_(std::move(p)),
        l_(l),
        scale_(scale) {}

  std::vector<Tensor> backward(const Tensor& dy) override {
    const Tensor dO = as_dtype(dy, qkv_.dtype());
    const int64_t H = l_.H, B = l_.B;
    Tensor dqkv = Tensor::empty(qkv_.shape(), qkv_.dtype(), qkv_.device());
    matmul_view(l_.scores(p_), true, l_.tokens(dO), false, l_.part(dqkv, 2), H, B);  // dv = P^T dO
    Tensor dP = Tensor::empty(p_.shape(), p_.dtype(), p_.device());
    matmul_view(l_.tokens(dO), false, l_.part(qkv_, 2), true, l_.scores(dP), H, B);  // dO v^T
    const Tensor dS = softmax_backward(p_, dP);
    dP = Tensor();
    const float s = static_cast<float>(scale_);
    matmul_view(l_.scores(dS), false, l_.part(qkv_, 1), false, l_.part(dqkv, 0), H, B, s);
    matmul_view(l_.scores(dS), true, l_.part(qkv_, 0), false, l_.part(dqkv, 1), H, B, s);
    return {dqkv};
  }
  void release_saved() override { qkv_ = p_ = Tensor(); }

 private:
  Tensor qkv_, p_;
  QkvLayout l_;
  double scale_;
};

// cuDNN's fused attention (tensor/ops.h fused_attention): saves qkv, o and the row statistics,
// no (B, H, N, N) tensor.
class FusedAttentionQkvNode final : public Node {
 public:
  FusedAttentionQkvNode(std::vector<Edge> edges, Tensor qkv, Tensor o, Tensor stats, int64_t heads)
      : Node("attention_qkv_fused", std::move(edges)),
        qkv_(std::move(qkv)),
        o_(std::move(o)),
        stats_(std::move(stats)),
        heads_(heads) {}

  std::vector<Tensor> backward(const Tensor& dy) override {
    return {fused_attention_backward(qkv_, o_, as_dtype(dy, qkv_.dtype()), stats_, heads_)};
  }
  void release_saved() override { qkv_ = o_ = stats_ = Tensor(); }

 private:
  Tensor qkv_, o_, stats_;
  int64_t heads_;
};

}  // namespace

Var attention_qkv(const Var& qkv, int64_t heads) {
  const Tensor X = qkv.data();
  SDLORA_CHECK(X.ndim() == 3 && heads > 0 && X.size(2) % (3 * heads) == 0 && X.size(2) > 0,
               "attention_qkv: qkv ", X.describe(), " should be (B, N, 3 C) with C a multiple of ",
               heads, " heads");
  QkvLayout l{X.size(0), X.size(1), heads, X.size(2) / (3 * heads), X.size(2) / 3};
  if (l.B == 0 || l.N == 0) {
    return record(
        "attention_qkv", Tensor::zeros({l.B, l.N, l.C}, X.dtype(), X.device()), {qkv},
        {[](const Tensor& dy) { return Tensor::zeros(dy.shape(), dy.dtype(), dy.device()); }});
  }
  if (fused_attention_available(X, heads)) {
    note_attention_path("cuDNN SDPA (fused, bfloat16)");
    FusedAttentionOut r = fused_attention(X, heads);
    Tensor O = r.o;
    return record_node<FusedAttentionQkvNode>(std::move(O), {qkv}, X, std::move(r.o),
                                              std::move(r.stats), heads);
  }
  if (!X.device().is_cpu())
    note_attention_path(std::string("strided products and softmax (") + dtype_name(X.dtype()) +
                        ")");
  const double scale = 1.0 / std::sqrt(static_cast<double>(l.hd));
  Tensor S = Tensor::empty({l.B, l.H, l.N, l.N}, X.dtype(), X.device());
  matmul_view(l.part(X, 0), false, l.part(X, 1), true, l.scores(S), l.H, l.B,
              static_cast<float>(scale));
  Tensor P = softmax(S);
  S = Tensor();
  Tensor O = Tensor::empty({l.B, l.N, l.C}, X.dtype(), X.device());
  matmul_view(l.scores(P), false, l.part(X, 2), false, l.tokens(O), l.H, l.B);
  return record_node<AttentionQkvNode>(std::move(O), {qkv}, X, std::move(P), l, scale);
}

// ---- cross-entropy over logits[:, col_begin:col_end] against labels - col_begin
//   dlogits[:, range] = (softmax - onehot) dloss / B;  zero outside the range
namespace {

// labels + delta on the labels' device (tensor/ has no integer arithmetic: through float32,
// exact for class indices below 2^24).
Tensor shift_labels(const Tensor& labels, int64_t delta) {
  if (delta == 0) return labels;
  return cast(add(cast(labels, DType::kFloat32), static_cast<double>(delta)), labels.dtype());
}

// The mean loss as a 0-d tensor. The loss kernel returns float32; float64 logits (CPU only,
// for gradient checks) take log_softmax and pick each row's label entry in float64.
Tensor ce_forward(const Tensor& logits, const Tensor& labels) {
  if (logits.dtype() != DType::kFloat64) return cross_entropy(logits, labels);
  const int64_t B = logits.size(0), C = logits.size(1);
  SDLORA_CHECK(labels.device().is_cpu() && labels.ndim() == 1 && labels.numel() == B,
               "cross_entropy: labels ", labels.describe(), " should be [", B, "] on the cpu");
  const Tensor lab = cast(labels, DType::kInt64);
  std::vector<int64_t> flat(static_cast<size_t>(B));
  for (int64_t i = 0; i < B; ++i) {
    const int64_t y = lab.data<int64_t>()[i];
    SDLORA_CHECK(y >= 0 && y < C, "cross_entropy: label ", y, " of sample ", i,
                 " out of range [0, ", C, ")");
    flat[static_cast<size_t>(i)] = i * C + y;
  }
  const Tensor picked = index_select(log_softmax(logits).reshape({B * C}), 0,
                                     Tensor::from_vector<int64_t>(flat, {B}));
  return neg(mean(picked));
}

// dloss is float32 for the kernel; other loss dtypes scale a unit-dloss gradient.
Tensor ce_backward(const Tensor& logits, const Tensor& labels, const Tensor& dloss) {
  if (dloss.dtype() == DType::kFloat32)
    return cross_entropy_backward(logits, labels, dloss.reshape({1}));
  const Tensor one = Tensor::full({1}, 1.0, DType::kFloat32, logits.device());
  return mul(cross_entropy_backward(logits, labels, one), cast(dloss, logits.dtype()));
}

}  // namespace

Var cross_entropy(const Var& logits, const Tensor& labels, int64_t col_begin, int64_t col_end) {
  SDLORA_CHECK(logits.ndim() == 2, "cross_entropy: logits should be (B, C), got ",
               logits.describe());
  const int64_t C = logits.size(1);
  SDLORA_CHECK(0 <= col_begin && col_begin < col_end && col_end <= C,
               "cross_entropy: column range [", col_begin, ", ", col_end, ") out of [0, ", C,
               ") for logits ", logits.describe());
  SDLORA_CHECK(
      labels.defined() && (labels.dtype() == DType::kInt32 || labels.dtype() == DType::kInt64),
      "cross_entropy: labels should be an int32 or int64 tensor, got ", labels.describe());
  if (labels.device().is_cpu()) {  // device labels are checked by the kernel (no host sync)
    const Tensor lab = cast(labels, DType::kInt64);
    for (int64_t i = 0; i < lab.numel(); ++i) {
      const int64_t y = lab.data<int64_t>()[i];
      SDLORA_CHECK(y >= col_begin && y < col_end, "cross_entropy: label ", y, " of sample ", i,
                   " is outside the column range [", col_begin, ", ", col_end, ")");
    }
  }
  const bool whole = col_begin == 0 && col_end == C;
  const Tensor L = whole ? logits.data() : slice(logits.data(), 1, col_begin, col_end);
  const Tensor lab = shift_labels(labels, -col_begin);
  const Shape full = logits.shape();
  return record("cross_entropy", ce_forward(L, lab), {logits}, {[=](const Tensor& dloss) {
                  Tensor g = ce_backward(L, lab, dloss);
                  if (whole) return g;
                  Tensor dx = Tensor::zeros(full, g.dtype(), g.device());
                  slice_set_(dx, 1, col_begin, g);
                  return dx;
                }});
}

Var cross_entropy(const Var& logits, const Tensor& labels) {
  SDLORA_CHECK(logits.ndim() == 2, "cross_entropy: logits should be (B, C), got ",
               logits.describe());
  return cross_entropy(logits, labels, 0, logits.size(1));
}

}  // namespace sdlora
