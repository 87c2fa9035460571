// CPU elementwise kernels: unary maths, tensor-scalar ops, broadcast binary ops, and the exact
// (erf) GELU with its derivative. Each op is chosen once per call, outside the loops, so the
// loops are plain and the compiler vectorises them; float32 GELU runs through SLEEF (vmath.h).
#include <algorithm>
#include <cmath>

#include "tensor/cpu/backend.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/vmath.h"

namespace sdlora::cpu {
namespace {

// Calls f(g) with g the scalar function of `op` (a lambda of its own type per op).
template <typename T, typename F>
void with_unary(UnaryOp op, F&& f) {
  switch (op) {
    case UnaryOp::kNeg:
      return f([](T x) { return -x; });
    case UnaryOp::kExp:
      return f([](T x) { return std::exp(x); });
    case UnaryOp::kLog:
      return f([](T x) { return std::log(x); });
    case UnaryOp::kSqrt:
      return f([](T x) { return std::sqrt(x); });
    case UnaryOp::kTanh:
      return f([](T x) { return std::tanh(x); });
    case UnaryOp::kGelu:
      return f([](T x) { return gelu_scalar(x); });
  }
}

template <typename T, typename F>
void with_scalar(ScalarOp op, T s, F&& f) {
  switch (op) {
    case ScalarOp::kAdd:
      return f([s](T x) { return x + s; });
    case ScalarOp::kSub:
      return f([s](T x) { return x - s; });
    case ScalarOp::kRSub:
      return f([s](T x) { return s - x; });
    case ScalarOp::kMul:
      return f([s](T x) { return x * s; });
    case ScalarOp::kDiv:
      return f([s](T x) { return x / s; });
    case ScalarOp::kRDiv:
      return f([s](T x) { return s / x; });
    case ScalarOp::kPow:
      if (s == static_cast<T>(2)) return f([](T x) { return x * x; });  // exact, as pow(x, 2)
      return f([s](T x) { return std::pow(x, s); });
  }
}

template <typename T, typename F>
void with_binary(BinaryOp op, F&& f) {
  switch (op) {
    case BinaryOp::kAdd:
      return f([](T a, T b) { return a + b; });
    case BinaryOp::kSub:
      return f([](T a, T b) { return a - b; });
    case BinaryOp::kMul:
      return f([](T a, T b) { return a * b; });
    case BinaryOp::kDiv:
      return f([](T a, T b) { return a / b; });
  }
}

// o[j] = g(a[j sa], b[j sb]) for j < n. The three common stride pairs (both contiguous, b or a
// broadcast along the row) get loops of their own that the compiler vectorises; out may alias
// a or b (in-place add_), element for element.
template <typename T, typename G>
void binary_row(G g, const T* a, int64_t sa, const T* b, int64_t sb, T* o, int64_t n) {
  if (sa == 1 && sb == 1) {
    for (int64_t j = 0; j < n; ++j) o[j] = g(a[j], b[j]);
  } else if (sa == 1 && sb == 0) {
    const T bv = b[0];
    for (int64_t j = 0; j < n; ++j) o[j] = g(a[j], bv);
  } else if (sa == 0 && sb == 1) {
    const T av = a[0];
    for (int64_t j = 0; j < n; ++j) o[j] = g(av, b[j]);
  } else {
    for (int64_t j = 0; j < n; ++j) o[j] = g(a[j * sa], b[j * sb]);
  }
}

// Runs f(begin, end) over [0, n) in blocks of kBlock elements, the blocks shared among the
// threads when n is large enough to pay for them.
constexpr int64_t kBlock = 4096;
template <typename F>
void blocked(int64_t n, F&& f) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  SDLORA_OMP_FOR(n)
  for (int64_t i = 0; i < blocks; ++i) f(i * kBlock, std::min(n, (i + 1) * kBlock));
}

}  // namespace

void CpuBackend::unary(UnaryOp op, const Tensor& x, Tensor& out) {
  dispatch_float(x.dtype(), "unary", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* o = out.data<T>();
    const int64_t n = x.numel();
    if constexpr (std::is_same_v<T, float>) {
      if (op == UnaryOp::kGelu) {  // SLEEF's erfc; float64 keeps the plain loop below
        blocked(n, [&](int64_t b, int64_t e) { gelu_f32(xp + b, o + b, e - b); });
        return;
      }
    }
    with_unary<T>(op, [&](auto g) {
      blocked(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) o[i] = g(xp[i]);
      });
    });
  });
}

void CpuBackend::scalar(ScalarOp op, const Tensor& x, double s, Tensor& out) {
  dispatch_float(x.dtype(), "scalar", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* o = out.data<T>();
    const int64_t n = x.numel();
    with_scalar<T>(op, static_cast<T>(s), [&](auto g) {
      SDLORA_OMP_FOR_MEMORY(n)
      for (int64_t i = 0; i < n; ++i) o[i] = g(xp[i]);
    });
  });
}

// Walks the output as rows of the innermost plan dim; each row's start offsets in a and b come
// from the row's coordinates in the outer dims (once per row, not per element). A single row
// (operands that merge into one dim) is split into blocks for the threads.
void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const BroadcastPlan& plan,
                        Tensor& out) {
  dispatch_float(a.dtype(), "binary", [&](auto tag) {
    using T = decltype(tag);
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* o = out.data<T>();
    if (plan.numel == 0) return;
    with_binary<T>(op, [&](auto g) {
      if (plan.ndim == 0) {  // every dim of size 1
        o[0] = g(ap[0], bp[0]);
        return;
      }
      const int last = plan.ndim - 1;
      const int64_t cols = plan.shape[last];
      const int64_t sa = plan.a_stride[last], sb = plan.b_stride[last];
      if (plan.ndim == 1) {
        blocked(cols, [&](int64_t s, int64_t e) {
          binary_row(g, ap + s * sa, sa, bp + s * sb, sb, o + s, e - s);
        });
        return;
      }
      const int64_t rows = plan.numel / cols;
      SDLORA_OMP_FOR_MEMORY(plan.numel)
      for (int64_t r = 0; r < rows; ++r) {
        int64_t rest = r, oa = 0, ob = 0;
        for (int d = last - 1; d >= 0; --d) {
          const int64_t coord = rest % plan.shape[d];
          rest /= plan.shape[d];
          oa += coord * plan.a_stride[d];
          ob += coord * plan.b_stride[d];
        }
        binary_row(g, ap + oa, sa, bp + ob, sb, o + r * cols, cols);
      }
    });
  });
}

void CpuBackend::gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  dispatch_float(x.dtype(), "gelu_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    const T* dyp = dy.data<T>();
    T* o = dx.data<T>();
    const int64_t n = x.numel();
    blocked(n, [&](int64_t b, int64_t e) {
      if constexpr (std::is_same_v<T, float>) {
        gelu_backward_f32(xp + b, dyp + b, o + b, e - b);  // SLEEF's erfc and exp
      } else {
        for (int64_t i = b; i < e; ++i) o[i] = dyp[i] * gelu_grad_scalar(xp[i]);
      }
    });
  });
}

}  // namespace sdlora::cpu
