// Elementwise ops (unary, scalar, broadcast binary, GELU, in-place updates): argument checks,
// broadcasting, dispatch.
#include <cmath>

#include "tensor/ops_common.h"

namespace sdlora {

using namespace detail;

namespace {

Tensor unary_op(UnaryOp op, const Tensor& x, const char* name) {
  check_defined(x, name, "x");
  Backend& be = float_backend(x, name);
  const Tensor xc = compute_view(x);
  Tensor out = Tensor::empty(xc.shape(), xc.dtype(), xc.device());
  be.unary(op, xc, out);
  return result_as(out, x.dtype());
}

Tensor scalar_op(ScalarOp op, const Tensor& x, double s, const char* name) {
  check_defined(x, name, "x");
  Backend& be = float_backend(x, name);
  const Tensor xc = compute_view(x);
  Tensor out = Tensor::empty(xc.shape(), xc.dtype(), xc.device());
  be.scalar(op, xc, s, out);
  return result_as(out, x.dtype());
}

// numpy broadcasting of a against b, with adjacent dims merged where both operands allow.
BroadcastPlan broadcast_plan(const Tensor& a, const Tensor& b, Shape& out_shape, const char* op) {
  const size_t nd = std::max(a.shape().size(), b.shape().size());
  Shape sa(nd, 1), sb(nd, 1);
  std::copy(a.shape().begin(), a.shape().end(),
            sa.begin() + static_cast<long>(nd - a.shape().size()));
  std::copy(b.shape().begin(), b.shape().end(),
            sb.begin() + static_cast<long>(nd - b.shape().size()));
  out_shape.assign(nd, 1);
  for (size_t d = 0; d < nd; ++d) {
    SDLORA_CHECK(sa[d] == sb[d] || sa[d] == 1 || sb[d] == 1, op, ": shapes ", shape_str(a.shape()),
                 " and ", shape_str(b.shape()), " do not broadcast (", a.describe(), ", ",
                 b.describe(), ")");
    out_shape[d] = sa[d] == 1 ? sb[d] : sa[d];
  }
  // Element strides of each operand, 0 where broadcast.
  std::vector<int64_t> st_a(nd), st_b(nd);
  int64_t ra = 1, rb = 1;
  for (size_t i = nd; i-- > 0;) {
    st_a[i] = (sa[i] == 1 && out_shape[i] != 1) ? 0 : ra;
    st_b[i] = (sb[i] == 1 && out_shape[i] != 1) ? 0 : rb;
    ra *= sa[i];
    rb *= sb[i];
  }
  // Merge dim i into the running dim when both operands step contiguously across them.
  Shape shape;
  std::vector<int64_t> ma, mb;
  for (size_t i = 0; i < nd; ++i) {
    if (out_shape[i] == 1) continue;
    if (!shape.empty() && ma.back() == st_a[i] * out_shape[i] &&
        mb.back() == st_b[i] * out_shape[i]) {
      shape.back() *= out_shape[i];
      ma.back() = st_a[i];
      mb.back() = st_b[i];
    } else {
      shape.push_back(out_shape[i]);
      ma.push_back(st_a[i]);
      mb.push_back(st_b[i]);
    }
  }
  SDLORA_CHECK(shape.size() <= static_cast<size_t>(kMaxDims), op, ": broadcast of ", a.describe(),
               " and ", b.describe(), " needs more than ", kMaxDims, " dims");
  BroadcastPlan plan;
  plan.ndim = static_cast<int>(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    plan.shape[i] = shape[i];
    plan.a_stride[i] = ma[i];
    plan.b_stride[i] = mb[i];
  }
  plan.numel = shape_numel(out_shape);
  return plan;
}

Tensor binary_op(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  check_defined(a, name, "a");
  check_defined(b, name, "b");
  check_same_device(a, b, name);
  check_same_dtype(a, b, name);
  Backend& be = float_backend(a, name);
  Shape out_shape;
  const BroadcastPlan plan = broadcast_plan(a, b, out_shape, name);
  const Tensor ac = compute_view(a), bc = compute_view(b);
  Tensor out = Tensor::empty(out_shape, ac.dtype(), a.device());
  be.binary(op, ac, bc, plan, out);
  return result_as(out, a.dtype());
}

// The mixed-precision form: float32 / bfloat16 operands in any mix, the result written as
// `out`. The CPU computes in float32 and casts; CUDA fuses the casts into the kernel.
Tensor binary_op_as(BinaryOp op, const Tensor& a, const Tensor& b, DType out_dtype,
                    const char* name) {
  check_defined(a, name, "a");
  check_defined(b, name, "b");
  check_same_device(a, b, name);
  if (a.dtype() == b.dtype() && a.dtype() == out_dtype) return binary_op(op, a, b, name);
  check_mixed_float(a, out_dtype, name);
  check_mixed_float(b, out_dtype, name);
  Backend& be = float_backend(a, name);
  Shape out_shape;
  const BroadcastPlan plan = broadcast_plan(a, b, out_shape, name);
  if (a.device().is_cpu()) {
    const Tensor ac = cast(a, DType::kFloat32), bc = cast(b, DType::kFloat32);
    Tensor out = Tensor::empty(out_shape, DType::kFloat32, a.device());
    be.binary(op, ac, bc, plan, out);
    return result_as(out, out_dtype);
  }
  Tensor out = Tensor::empty(out_shape, out_dtype, a.device());
  be.binary(op, a, b, plan, out);
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b, DType out) {
  return binary_op_as(BinaryOp::kAdd, a, b, out, "add");
}
Tensor sub(const Tensor& a, const Tensor& b, DType out) {
  return binary_op_as(BinaryOp::kSub, a, b, out, "sub");
}
Tensor mul(const Tensor& a, const Tensor& b, DType out) {
  return binary_op_as(BinaryOp::kMul, a, b, out, "mul");
}
Tensor div(const Tensor& a, const Tensor& b, DType out) {
  return binary_op_as(BinaryOp::kDiv, a, b, out, "div");
}

Tensor add(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::kAdd, a, b, "add"); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::kSub, a, b, "sub"); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::kMul, a, b, "mul"); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::kDiv, a, b, "div"); }

Tensor add(const Tensor& a, double s) { return scalar_op(ScalarOp::kAdd, a, s, "add"); }
Tensor sub(const Tensor& a, double s) { return scalar_op(ScalarOp::kSub, a, s, "sub"); }
Tensor rsub(double s, const Tensor& a) { return scalar_op(ScalarOp::kRSub, a, s, "rsub"); }
Tensor mul(const Tensor& a, double s) { return scalar_op(ScalarOp::kMul, a, s, "mul"); }
Tensor div(const Tensor& a, double s) { return scalar_op(ScalarOp::kDiv, a, s, "div"); }
Tensor rdiv(double s, const Tensor& a) { return scalar_op(ScalarOp::kRDiv, a, s, "rdiv"); }
Tensor pow(const Tensor& a, double p) { return scalar_op(ScalarOp::kPow, a, p, "pow"); }

Tensor neg(const Tensor& x) { return unary_op(UnaryOp::kNeg, x, "neg"); }
Tensor exp(const Tensor& x) { return unary_op(UnaryOp::kExp, x, "exp"); }
Tensor log(const Tensor& x) { return unary_op(UnaryOp::kLog, x, "log"); }
Tensor sqrt(const Tensor& x) { return unary_op(UnaryOp::kSqrt, x, "sqrt"); }
Tensor tanh(const Tensor& x) { return unary_op(UnaryOp::kTanh, x, "tanh"); }
Tensor gelu(const Tensor& x) { return unary_op(UnaryOp::kGelu, x, "gelu"); }

Tensor gelu_backward(const Tensor& x, const Tensor& dy) {
  check_defined(x, "gelu_backward", "x");
  check_defined(dy, "gelu_backward", "dy");
  check_same_device(x, dy, "gelu_backward");
  check_same_dtype(x, dy, "gelu_backward");
  SDLORA_CHECK(x.shape() == dy.shape(), "gelu_backward: x ", x.describe(), " and dy ",
               dy.describe(), " differ in shape");
  Backend& be = float_backend(x, "gelu_backward");
  const Tensor xc = compute_view(x), dyc = compute_view(dy);
  Tensor dx = Tensor::empty(xc.shape(), xc.dtype(), x.device());
  be.gelu_backward(xc, dyc, dx);
  return result_as(dx, x.dtype());
}

void add_(Tensor& a, const Tensor& b, double alpha) {
  check_defined(a, "add_", "a");
  check_defined(b, "add_", "b");
  check_same_device(a, b, "add_");
  const bool mixed = a.dtype() != b.dtype();
  if (mixed)
    check_mixed_float(b, a.dtype(), "add_");
  else
    check_same_dtype(a, b, "add_");
  Backend& be = float_backend(a, "add_");
  Shape out_shape;
  const Tensor bs = alpha == 1.0 ? b : mul(b, alpha);
  const BroadcastPlan plan = broadcast_plan(a, bs, out_shape, "add_");
  SDLORA_CHECK(out_shape == a.shape() || shape_numel(out_shape) == a.numel(),
               "add_: ", b.describe(), " does not broadcast to the destination ", a.describe());
  if (mixed && a.device().is_cpu()) {  // b read in its own dtype: through float32 on the CPU
    a.copy_(binary_op_as(BinaryOp::kAdd, a, bs, a.dtype(), "add_"));
    return;
  }
  if (needs_cpu_upcast(a)) {
    Tensor sum = binary_op(BinaryOp::kAdd, a, bs, "add_");
    a.copy_(sum);
    return;
  }
  be.binary(BinaryOp::kAdd, a, bs, plan, a);
}

void mul_(Tensor& a, double s) {
  check_defined(a, "mul_", "a");
  Backend& be = float_backend(a, "mul_");
  if (needs_cpu_upcast(a)) {
    a.copy_(mul(a, s));
    return;
  }
  be.scalar(ScalarOp::kMul, a, s, a);
}

}  // namespace sdlora
