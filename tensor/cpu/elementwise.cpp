// CPU elementwise kernels: unary maths, tensor-scalar ops, broadcast binary ops, and the exact
// (erf) GELU with its derivative.
#include <cmath>

#include "tensor/cpu/backend.h"
#include "tensor/cpu/parallel.h"

namespace sdlora::cpu {
namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1 / sqrt(2 pi)

// gelu(x) = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
template <typename T>
T gelu(T x) {
  return static_cast<T>(0.5) * x * (static_cast<T>(1) + std::erf(x * static_cast<T>(kInvSqrt2)));
}

// gelu'(x) = Phi(x) + x phi(x), phi the standard normal density
template <typename T>
T gelu_grad(T x) {
  const T cdf = static_cast<T>(0.5) * (static_cast<T>(1) + std::erf(x * static_cast<T>(kInvSqrt2)));
  const T pdf = static_cast<T>(kInvSqrt2Pi) * std::exp(static_cast<T>(-0.5) * x * x);
  return cdf + x * pdf;
}

template <typename T>
T apply_unary(UnaryOp op, T x) {
  switch (op) {
    case UnaryOp::kNeg:
      return -x;
    case UnaryOp::kExp:
      return std::exp(x);
    case UnaryOp::kLog:
      return std::log(x);
    case UnaryOp::kSqrt:
      return std::sqrt(x);
    case UnaryOp::kTanh:
      return std::tanh(x);
    case UnaryOp::kGelu:
      return gelu(x);
  }
  return x;
}

template <typename T>
T apply_scalar(ScalarOp op, T x, T s) {
  switch (op) {
    case ScalarOp::kAdd:
      return x + s;
    case ScalarOp::kSub:
      return x - s;
    case ScalarOp::kRSub:
      return s - x;
    case ScalarOp::kMul:
      return x * s;
    case ScalarOp::kDiv:
      return x / s;
    case ScalarOp::kRDiv:
      return s / x;
    case ScalarOp::kPow:
      return std::pow(x, s);
  }
  return x;
}

template <typename T>
T apply_binary(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::kAdd:
      return a + b;
    case BinaryOp::kSub:
      return a - b;
    case BinaryOp::kMul:
      return a * b;
    case BinaryOp::kDiv:
      return a / b;
  }
  return a;
}

}  // namespace

void CpuBackend::unary(UnaryOp op, const Tensor& x, Tensor& out) {
  dispatch_float(x.dtype(), "unary", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* o = out.data<T>();
    const int64_t n = x.numel();
    SDLORA_OMP_FOR(n)
    for (int64_t i = 0; i < n; ++i) o[i] = apply_unary(op, xp[i]);
  });
}

void CpuBackend::scalar(ScalarOp op, const Tensor& x, double s, Tensor& out) {
  dispatch_float(x.dtype(), "scalar", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* o = out.data<T>();
    const T sv = static_cast<T>(s);
    const int64_t n = x.numel();
    SDLORA_OMP_FOR(n)
    for (int64_t i = 0; i < n; ++i) o[i] = apply_scalar(op, xp[i], sv);
  });
}

// Walks the output as rows of the innermost plan dim; each row's start offsets in a and b come
// from the row's coordinates in the outer dims.
void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const BroadcastPlan& plan,
                        Tensor& out) {
  dispatch_float(a.dtype(), "binary", [&](auto tag) {
    using T = decltype(tag);
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* o = out.data<T>();
    if (plan.numel == 0) return;
    if (plan.ndim == 0) {  // every dim of size 1
      o[0] = apply_binary(op, ap[0], bp[0]);
      return;
    }
    const int last = plan.ndim - 1;
    const int64_t cols = plan.shape[last];
    const int64_t sa = plan.a_stride[last], sb = plan.b_stride[last];
    const int64_t rows = plan.numel / cols;
    SDLORA_OMP_FOR(plan.numel)
    for (int64_t r = 0; r < rows; ++r) {
      int64_t rest = r, oa = 0, ob = 0;
      for (int d = last - 1; d >= 0; --d) {
        const int64_t coord = rest % plan.shape[d];
        rest /= plan.shape[d];
        oa += coord * plan.a_stride[d];
        ob += coord * plan.b_stride[d];
      }
      T* orow = o + r * cols;
      for (int64_t j = 0; j < cols; ++j)
        orow[j] = apply_binary(op, ap[oa + j * sa], bp[ob + j * sb]);
    }
  });
}

void CpuBackend::gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  dispatch_float(x.dtype(), "gelu_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    const T* dyp = dy.data<T>();
    T* o = dx.data<T>();
    const int64_t n = x.numel();
    SDLORA_OMP_FOR(n)
    for (int64_t i = 0; i < n; ++i) o[i] = dyp[i] * gelu_grad(xp[i]);
  });
}

}  // namespace sdlora::cpu
