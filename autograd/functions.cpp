// The derivative rules of the primitive ops, one rule per input, kept together like a table.
// dy is the output's gradient; each rule returns its input's gradient (the engine accumulates).
// A rule captures only the tensors it reads; rules of inputs that need no gradient are dropped
// at record time, so what they captured is not kept.
#include "autograd/functions.h"

#include <cmath>
#include <numeric>

#include "autograd/node.h"
#include "tensor/ops.h"

namespace sdlora {

namespace {

int64_t wrap(int64_t dim, int64_t ndim, const char* op) {
  SDLORA_CHECK(dim >= -ndim && dim < ndim, op, ": dimension ", dim, " out of range for ", ndim,
               " dims");
  return dim < 0 ? dim + ndim : dim;
}

// dy of a reduction over dim, with the reduced dimension put back as 1.
Tensor unsqueeze_reduced(const Tensor& dy, const Shape& x_shape, int64_t dim) {
  Shape s = x_shape;
  s[static_cast<size_t>(dim)] = 1;
  return dy.reshape(s);
}

// The n x n identity, built on the device by scattering ones onto the diagonal.
Tensor identity(int64_t n, DType dtype, Device device) {
  Tensor eye = Tensor::zeros({n * n}, dtype, device);
  index_add_(
      eye, 0,
      arange(0.0, static_cast<double>(n * n), static_cast<double>(n + 1), DType::kInt64, device),
      Tensor::full({n}, 1.0, dtype, device));
  return eye.reshape({n, n});
}

}  // namespace

// ---- mixed precision (node.h)
DType compute_dtype(const Tensor& a, const Tensor& b) {
  if (a.dtype() == b.dtype()) return a.dtype();
  auto ok = [](DType t) { return t == DType::kFloat32 || t == DType::kBFloat16; };
  SDLORA_CHECK(ok(a.dtype()) && ok(b.dtype()),
               "mixed precision takes float32 and bfloat16 only, got ", a.describe(), " and ",
               b.describe());
  return DType::kBFloat16;
}

Tensor as_dtype(const Tensor& t, DType dtype) { return t.dtype() == dtype ? t : cast(t, dtype); }

// ---- matrix products: C = op(A) op(B); gradients laid out as A and B are stored.
// A 2-D operand shared by a batch gets its gradient summed over the batch (sum_to_shape), or
// from one tall product when the batched side can be flattened.

Var matmul(const Var& a, const Var& b, bool ta, bool tb) {
  const DType cd = compute_dtype(a.data(), b.data());
  const DType da = a.dtype(), db = b.dtype();
  const Tensor A = as_dtype(a.data(), cd), B = as_dtype(b.data(), cd);
  return record(
      "matmul", matmul(A, B, ta, tb), {a, b},
      {[=](const Tensor& dC) {
         const Tensor dA = !ta ? matmul(dC, B, false, !tb, da)  // dC op(B)^T
                               : matmul(B, dC, tb, true, da);   // (dC op(B)^T)^T
         return sum_to_shape(dA, A.shape());
       },
       [=](const Tensor& dC) {
         if (!ta && A.ndim() > 2 && B.ndim() == 2) {  // shared B: one product over all rows
           const Tensor A2 = A.flatten_to_2d(), dC2 = dC.flatten_to_2d();
           return tb ? matmul(dC2, A2, true, false, db) : matmul(A2, dC2, true, false, db);
         }
         const Tensor dB = !tb ? matmul(A, dC, !ta, false, db)  // op(A)^T dC
                               : matmul(dC, A, true, ta, db);   // (op(A)^T dC)^T
         return sum_to_shape(dB, B.shape());
       }});
}

// ---- elementwise with broadcasting (mixed float32 / bfloat16 operands as the products: a
// bfloat16 result, each gradient in its input's dtype)
Var add(const Var& a, const Var& b) {
  const Shape sa = a.shape(), sb = b.shape();
  const DType cd = compute_dtype(a.data(), b.data()), da = a.dtype(), db = b.dtype();
  return record("add", add(a.data(), b.data(), cd), {a, b},
                {[=](const Tensor& dy) { return as_dtype(sum_to_shape(dy, sa), da); },
                 [=](const Tensor& dy) { return as_dtype(sum_to_shape(dy, sb), db); }});
}

Var sub(const Var& a, const Var& b) {
  const Shape sa = a.shape(), sb = b.shape();
  const DType cd = compute_dtype(a.data(), b.data()), da = a.dtype(), db = b.dtype();
  return record("sub", sub(a.data(), b.data(), cd), {a, b},
                {[=](const Tensor& dy) { return as_dtype(sum_to_shape(dy, sa), da); },
                 [=](const Tensor& dy) { return as_dtype(sum_to_shape(neg(dy), sb), db); }});
}

Var mul(const Var& a, const Var& b) {
  const Tensor A = a.data(), B = b.data();
  const DType cd = compute_dtype(A, B);
  return record("mul", mul(A, B, cd), {a, b},
                {[=](const Tensor& dy) { return sum_to_shape(mul(dy, B, A.dtype()), A.shape()); },
                 [=](const Tensor& dy) { return sum_to_shape(mul(dy, A, B.dtype()), B.shape()); }});
}

Var div(const Var& a, const Var& b) {
  const Tensor A = a.data(), B = b.data();
  const DType cd = compute_dtype(A, B);
  return record("div", div(A, B, cd), {a, b},
                {[=](const Tensor& dy) { return sum_to_shape(div(dy, B, A.dtype()), A.shape()); },
                 [=](const Tensor& dy) {
                   return sum_to_shape(neg(div(mul(dy, A, B.dtype()), mul(B, B))), B.shape());
                 }});
}

// ---- elementwise with a constant
Var add(const Var& a, double s) {
  return record("add", add(a.data(), s), {a}, {[](const Tensor& dy) { return dy; }});
}
Var sub(const Var& a, double s) {
  return record("sub", sub(a.data(), s), {a}, {[](const Tensor& dy) { return dy; }});
}
Var rsub(double s, const Var& a) {
  return record("rsub", rsub(s, a.data()), {a}, {[](const Tensor& dy) { return neg(dy); }});
}
Var mul(const Var& a, double s) {
  return record("mul", mul(a.data(), s), {a}, {[=](const Tensor& dy) { return mul(dy, s); }});
}
Var div(const Var& a, double s) {
  return record("div", div(a.data(), s), {a}, {[=](const Tensor& dy) { return div(dy, s); }});
}
Var rdiv(double s, const Var& a) {  // y = s / a: dx = -dy y / a
  const Tensor A = a.data(), Y = rdiv(s, A);
  return record("rdiv", Y, {a}, {[=](const Tensor& dy) { return neg(div(mul(dy, Y), A)); }});
}
Var pow(const Var& a, double p) {  // dx = dy p a^(p-1)
  const Tensor A = a.data();
  return record("pow", pow(A, p), {a},
                {[=](const Tensor& dy) { return mul(dy, mul(pow(A, p - 1.0), p)); }});
}

// ---- unary
Var neg(const Var& x) {
  return record("neg", neg(x.data()), {x}, {[](const Tensor& dy) { return neg(dy); }});
}
Var exp(const Var& x) {  // dx = dy y
  const Tensor Y = exp(x.data());
  return record("exp", Y, {x}, {[=](const Tensor& dy) { return mul(dy, Y); }});
}
Var log(const Var& x) {  // dx = dy / x
  const Tensor X = x.data();
  return record("log", log(X), {x}, {[=](const Tensor& dy) { return div(dy, X); }});
}
Var sqrt(const Var& x) {  // dx = dy / (2 y)
  const Tensor Y = sqrt(x.data());
  return record("sqrt", Y, {x}, {[=](const Tensor& dy) { return div(mul(dy, 0.5), Y); }});
}
Var tanh(const Var& x) {  // dx = dy (1 - y^2)
  const Tensor Y = tanh(x.data());
  return record("tanh", Y, {x}, {[=](const Tensor& dy) { return mul(dy, rsub(1.0, mul(Y, Y))); }});
}
Var gelu(const Var& x) {  // dx = dy gelu'(x)
  const Tensor X = x.data();
  return record("gelu", gelu(X), {x}, {[=](const Tensor& dy) { return gelu_backward(X, dy); }});
}

// ---- reductions: the gradient is dy spread back over the reduced elements
Var sum(const Var& x) {
  const Shape xs = x.shape();
  return record("sum", sum(x.data()), {x},
                {[=](const Tensor& dy) { return broadcast_tensor(dy, xs); }});
}

Var sum(const Var& x, int64_t dim, bool keepdim) {
  const Shape xs = x.shape();
  const int64_t d = wrap(dim, x.ndim(), "sum");
  return record("sum", sum(x.data(), d, keepdim), {x}, {[=](const Tensor& dy) {
                  return broadcast_tensor(unsqueeze_reduced(dy, xs, d), xs);
                }});
}

Var mean(const Var& x) {
  const Shape xs = x.shape();
  const double inv_n = 1.0 / static_cast<double>(x.numel());
  return record("mean", mean(x.data()), {x},
                {[=](const Tensor& dy) { return broadcast_tensor(mul(dy, inv_n), xs); }});
}

Var mean(const Var& x, int64_t dim, bool keepdim) {
  const Shape xs = x.shape();
  const int64_t d = wrap(dim, x.ndim(), "mean");
  const double inv_n = 1.0 / static_cast<double>(xs[static_cast<size_t>(d)]);
  return record("mean", mean(x.data(), d, keepdim), {x}, {[=](const Tensor& dy) {
                  return broadcast_tensor(mul(unsqueeze_reduced(dy, xs, d), inv_n), xs);
                }});
}

Var max(const Var& x) {  // dy goes to the (first) maximum
  const Shape xs = x.shape();
  const Tensor at = argmax(x.data()).reshape({1});
  return record("max", max(x.data()), {x}, {[=](const Tensor& dy) {
                  Tensor dx = Tensor::zeros({shape_numel(xs)}, dy.dtype(), dy.device());
                  index_add_(dx, 0, at, dy.reshape({1}));
                  return dx.reshape(xs);
                }});
}

Var max(const Var& x, int64_t dim, bool keepdim) {
  // x seen as (outer, n, inner): dx = onehot(argmax) * dy, the one-hot rows picked from an
  // n x n identity (tensor/ has no per-row scatter).
  const Shape xs = x.shape();
  const int64_t d = wrap(dim, x.ndim(), "max");
  const int64_t n = xs[static_cast<size_t>(d)];
  const int64_t outer =
      std::accumulate(xs.begin(), xs.begin() + d, int64_t{1}, std::multiplies<>());
  const int64_t inner = x.numel() / std::max<int64_t>(1, outer * n);
  const Tensor at = argmax(x.data(), d, false).reshape({outer * inner});
  return record(
      "max", max(x.data(), d, keepdim), {x}, {[=](const Tensor& dy) {
        const Tensor onehot = index_select(identity(n, dy.dtype(), dy.device()), 0, at);
        const Tensor g = mul(onehot.reshape({outer, inner, n}), dy.reshape({outer, inner, 1}));
        return (inner == 1 ? g : permute(g, {0, 2, 1})).reshape(xs);
      }});
}

// ---- softmax over the last dimension
Var softmax(const Var& x) {
  const Tensor Y = softmax(x.data());
  return record("softmax", Y, {x}, {[=](const Tensor& dy) { return softmax_backward(Y, dy); }});
}
Var log_softmax(const Var& x) {
  const Tensor Y = log_softmax(x.data());
  return record("log_softmax", Y, {x},
                {[=](const Tensor& dy) { return log_softmax_backward(Y, dy); }});
}

// ---- layout: each rule is the adjoint move
Var reshape(const Var& x, const Shape& shape) {
  const Shape xs = x.shape();
  return record("reshape", x.data().reshape(shape), {x},
                {[=](const Tensor& dy) { return dy.reshape(xs); }});
}

Var permute(const Var& x, const std::vector<int64_t>& perm) {
  std::vector<int64_t> inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i)
    inverse[static_cast<size_t>(wrap(perm[i], x.ndim(), "permute"))] = static_cast<int64_t>(i);
  return record("permute", permute(x.data(), perm), {x},
                {[=](const Tensor& dy) { return permute(dy, inverse); }});
}

Var transpose(const Var& x, int64_t d0, int64_t d1) {
  return record("transpose", transpose(x.data(), d0, d1), {x},
                {[=](const Tensor& dy) { return transpose(dy, d0, d1); }});
}

Var cat(const std::vector<Var>& xs, int64_t dim) {
  SDLORA_CHECK(!xs.empty(), "cat: no Vars given");
  const int64_t d = wrap(dim, xs.front().ndim(), "cat");
  std::vector<Tensor> data;
  std::vector<Rule> rules;
  int64_t start = 0;
  for (const Var& x : xs) {
    data.push_back(x.data());
    const int64_t end = start + x.size(d);
    rules.push_back([=](const Tensor& dy) { return slice(dy, d, start, end); });
    start = end;
  }
  return record("cat", cat(data, d), xs, std::move(rules));
}

Var slice(const Var& x, int64_t dim, int64_t start, int64_t end) {
  const Shape xs = x.shape();
  return record("slice", slice(x.data(), dim, start, end), {x},
                {[=](const Tensor& dy) { return slice_backward(dy, xs, dim, start); }});
}

Var index_select(const Var& x, int64_t dim, const Tensor& index) {
  const Shape xs = x.shape();
  return record("index_select", index_select(x.data(), dim, index), {x}, {[=](const Tensor& dy) {
                  Tensor dx = Tensor::zeros(xs, dy.dtype(), dy.device());
                  index_add_(dx, dim, index, dy);
                  return dx;
                }});
}

Var broadcast_to(const Var& x, const Shape& shape) {
  const Shape xs = x.shape();
  return record("broadcast_to", broadcast_tensor(x.data(), shape), {x},
                {[=](const Tensor& dy) { return sum_to_shape(dy, xs); }});
}

Var cast(const Var& x, DType dtype) {
  SDLORA_CHECK(is_floating(dtype), "cast: a differentiable cast needs a float dtype, got ",
               dtype_name(dtype));
  if (x.dtype() == dtype) return x;
  const DType from = x.dtype();
  return record("cast", cast(x.data(), dtype), {x},
                {[=](const Tensor& dy) { return cast(dy, from); }});
}

Var patchify(const Var& x, int64_t p) {
  SDLORA_CHECK(x.ndim() == 4, "patchify: x should be (B, C, H, W), got ", x.describe());
  const int64_t C = x.size(1), H = x.size(2), W = x.size(3);
  return record("patchify", patchify(x.data(), p), {x},
                {[=](const Tensor& dy) { return unpatchify(dy, C, H, W, p); }});
}

}  // namespace sdlora
