// Fused linear layers: one product with its epilogue (bias, residual as C, bias gradient) and the
// GELU pair, so that no bias add, residual add or separate bias reduction reads the activations.
// Checks, shapes and dtypes here; the kernels are the backends' gemm_fused and
// gelu_backward_bgrad (tensor/cpu/fused_linear.cpp is the reference semantics).
#include "tensor/ops_common.h"

namespace sdlora {

using namespace detail;

namespace {

bool epilogue_dtype_ok(const Tensor& t, DType c) {
  return t.dtype() == c || t.dtype() == DType::kFloat32;
}

// c (m, n) = op(a) op(b) with the epilogue. a and b are 2-D of one dtype; c has that dtype or is
// float32 for bfloat16 operands. Operands the kernels do not take are converted here: on the
// CPU everything is computed in float32 (float64 stays float64) and written back; on CUDA the
// residual, the bias and its gradient take c's dtype (cuBLASLt's bias type is the output's).
void fused_product(const Tensor& a, const Tensor& b, Tensor& c, bool ta, bool tb,
                   const Tensor& bias, const Tensor& residual, Tensor* bias_grad) {
  GemmPlan p;
  p.trans_a = ta;
  p.trans_b = tb;
  p.m = ta ? a.size(1) : a.size(0);
  p.k = ta ? a.size(0) : a.size(1);
  p.n = tb ? b.size(0) : b.size(1);
  if (c.numel() == 0 && (bias_grad == nullptr || bias_grad->numel() == 0)) return;
  Backend& be = float_backend(a, "linear");
  if (a.device().is_cpu()) {
    const DType ct = a.dtype() == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
    auto conv = [&](const Tensor& t) { return t.defined() ? result_as(t, ct) : t; };
    const Tensor A = conv(a), B = conv(b), bias_c = conv(bias), res_c = conv(residual);
    Tensor C = c.dtype() == ct ? c : Tensor::empty(c.shape(), ct, c.device());
    Tensor G;
    if (bias_grad != nullptr)
      G = bias_grad->dtype() == ct ? *bias_grad : Tensor::empty(bias_grad->shape(), ct, c.device());
    GemmEpilogue ep;
    if (bias_c.defined()) ep.bias = &bias_c;
    if (res_c.defined()) ep.residual = &res_c;
    if (bias_grad != nullptr) ep.bias_grad = &G;
    be.gemm_fused(A, B, C, p, ep);
    if (C.dtype() != c.dtype()) c.copy_(cast(C, c.dtype()));
    if (bias_grad != nullptr && G.dtype() != bias_grad->dtype())
      bias_grad->copy_(cast(G, bias_grad->dtype()));
    return;
  }
  const DType cd = c.dtype();
  const Tensor bias_c = bias.defined() ? result_as(bias, cd) : bias;
  const Tensor res_c = residual.defined() ? result_as(residual, cd) : residual;
  Tensor G;
  if (bias_grad != nullptr)
    G = bias_grad->dtype() == cd ? *bias_grad : Tensor::empty(bias_grad->shape(), cd, c.device());
  GemmEpilogue ep;
  if (bias_c.defined()) ep.bias = &bias_c;
  if (res_c.defined()) ep.residual = &res_c;
  if (bias_grad != nullptr) ep.bias_grad = &G;
  be.gemm_fused(a, b, c, p, ep);
  if (bias_grad != nullptr && G.dtype() != bias_grad->dtype())
    bias_grad->copy_(cast(G, bias_grad->dtype()));
}

// The checks every linear op shares: x (..., K) and w (N, K) on one device, one dtype.
void check_linear(const Tensor& x, const Tensor& w, const Tensor& b, const char* op) {
  check_defined(x, op, "x");
  check_defined(w, op, "weight");
  check_same_device(x, w, op);
  check_same_dtype(x, w, op);
  SDLORA_CHECK(x.ndim() >= 2 && w.ndim() == 2 && x.size(-1) == w.size(1), op, ": x ", x.describe(),
               " and weight ", w.describe(), " should be (..., in) and (out, in)");
  if (b.defined()) {
    check_same_device(x, b, op);
    check_float(b, op);
    SDLORA_CHECK(b.shape() == Shape{w.size(0)}, op, ": bias ", b.describe(), " should be [",
                 w.size(0), "] for weight ", w.describe());
  }
}

Shape linear_shape(const Tensor& x, const Tensor& w) {
  Shape s = x.shape();
  s.back() = w.size(0);
  return s;
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& residual) {
  check_linear(x, w, b, "linear");
  const Shape out = linear_shape(x, w);
  if (residual.defined()) {
    check_same_device(x, residual, "linear");
    check_float(residual, "linear");
    SDLORA_CHECK(residual.shape() == out, "linear: residual ", residual.describe(),
                 " should have the output's shape ", shape_str(out));
  }
  Tensor y = Tensor::empty(out, x.dtype(), x.device());
  Tensor y2 = y.flatten_to_2d();
  fused_product(x.flatten_to_2d(), w, y2, false, true, b,
                residual.defined() ? residual.flatten_to_2d() : residual, nullptr);
  return y;
}

LinearGeluOut linear_gelu(const Tensor& x, const Tensor& w, const Tensor& b) {
  LinearGeluOut r;
  r.pre = linear(x, w, b);
  r.y = gelu(r.pre);
  return r;
}

LinearGrads linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                            const LinearGradRequest& want) {
  check_defined(dy, "linear_backward", "dy");
  check_float(dy, "linear_backward");
  const Tensor dy2 = dy.flatten_to_2d();
  const int64_t N = dy.size(-1);
  LinearGrads g;
  if (want.dx) {
    check_defined(w, "linear_backward", "weight");
    SDLORA_CHECK(w.ndim() == 2 && w.size(0) == N, "linear_backward: weight ", w.describe(),
                 " should be (", N, ", in) for dy ", dy.describe());
    g.dx = matmul(dy, w, false, false, want.dx_dtype);
  }
  if (want.dw) {
    check_defined(x, "linear_backward", "x");
    check_same_dtype(dy, x, "linear_backward");
    const Tensor x2 = x.flatten_to_2d();
    SDLORA_CHECK(x2.size(0) == dy2.size(0), "linear_backward: x ", x.describe(), " and dy ",
                 dy.describe(), " have different rows");
    g.dw = Tensor::empty({N, x2.size(1)}, want.dw_dtype, dy.device());
    if (want.dw_dtype != dy.dtype()) check_mixed_float(dy, want.dw_dtype, "linear_backward");
    if (want.db) g.db = Tensor::empty({N}, want.db_dtype, dy.device());
    fused_product(dy2, x2, g.dw, true, false, Tensor(), Tensor(), want.db ? &g.db : nullptr);
  } else if (want.db) {
    g.db = sum(dy2, 0, false, want.db_dtype);
  }
  return g;
}

GeluBgradOut gelu_backward_bgrad(const Tensor& pre, const Tensor& dy, DType db_dtype) {
  check_defined(pre, "gelu_backward_bgrad", "pre");
  check_defined(dy, "gelu_backward_bgrad", "dy");
  check_same_device(pre, dy, "gelu_backward_bgrad");
  check_same_dtype(pre, dy, "gelu_backward_bgrad");
  SDLORA_CHECK(pre.shape() == dy.shape() && pre.ndim() >= 1, "gelu_backward_bgrad: pre ",
               pre.describe(), " and dy ", dy.describe(), " should share one shape");
  Backend& be = float_backend(pre, "gelu_backward_bgrad");
  const int64_t cols = pre.size(-1);
  GeluBgradOut r;
  r.dx = Tensor::empty(pre.shape(), pre.dtype(), pre.device());
  r.db = Tensor::empty({cols}, db_dtype, pre.device());
  if (needs_cpu_upcast(pre)) {  // float32 maths; db sums dx as stored (rounded to bfloat16)
    Tensor dx = Tensor::empty(pre.shape(), DType::kFloat32, pre.device());
    Tensor db = Tensor::empty({cols}, DType::kFloat32, pre.device());
    be.gelu_backward_bgrad(cast(pre, DType::kFloat32), cast(dy, DType::kFloat32), cols, dx, db);
    r.dx = cast(dx, pre.dtype());
    r.db = sum(r.dx.flatten_to_2d(), 0, false, db_dtype);
    return r;
  }
  if (pre.device().is_cpu()) {
    Tensor db = db_dtype == pre.dtype() ? r.db : Tensor::empty({cols}, pre.dtype(), pre.device());
    be.gelu_backward_bgrad(pre, dy, cols, r.dx, db);
    if (db.dtype() != db_dtype) r.db.copy_(cast(db, db_dtype));
    return r;
  }
  Tensor db = epilogue_dtype_ok(r.db, pre.dtype())
                  ? r.db
                  : Tensor::empty({cols}, DType::kFloat32, pre.device());
  be.gelu_backward_bgrad(pre, dy, cols, r.dx, db);
  if (db.dtype() != r.db.dtype()) r.db.copy_(cast(db, db_dtype));
  return r;
}

}  // namespace sdlora
