// LayerNorm backward for frozen weight and bias: dx only (the dw and db sums over every row are
// skipped), optionally with the residual stream's gradient added in the same pass. Checks and
// dtypes here; the kernels are the backends' layernorm_backward_dx.
#include "tensor/ops_common.h"

namespace sdlora {

using namespace detail;

Tensor layernorm_backward_dx(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean,
                             const Tensor& rstd, const Tensor& residual) {
  const char* op = "layernorm_backward_dx";
  check_defined(dy, op, "dy");
  check_defined(x, op, "x");
  check_defined(w, op, "weight");
  check_same_device(x, dy, op);
  check_same_device(x, w, op);
  check_same_dtype(x, dy, op);
  check_float(w, op);
  SDLORA_CHECK(x.ndim() >= 1 && dy.shape() == x.shape() && w.shape() == Shape{x.size(-1)}, op,
               ": dy ", dy.describe(), ", x ", x.describe(), " and weight ", w.describe(),
               " should be (..., C), (..., C) and (C)");
  const int64_t C = x.size(-1);
  const int64_t rows = C == 0 ? 0 : x.numel() / C;
  for (const Tensor* s : {&mean, &rstd}) {
    check_defined(*s, op, "mean/rstd");
    check_same_device(x, *s, op);
    SDLORA_CHECK(s->dtype() == DType::kFloat32 && s->shape() == Shape{rows}, op, ": statistics ",
                 s->describe(), " should be float32[", rows, "]");
  }
  if (residual.defined()) {
    check_same_device(x, residual, op);
    SDLORA_CHECK(residual.shape() == x.shape() && residual.dtype() == dy.dtype(), op,
                 ": residual gradient ", residual.describe(), " should match dy ", dy.describe());
  }
  Backend& be = float_backend(x, op);
  const Tensor dyc = compute_view(dy), xc = compute_view(x);
  const Tensor rc = residual.defined() ? compute_view(residual) : Tensor();
  // The weight in x's compute dtype on the CPU, float32 on CUDA (C values: a negligible cast).
  const Tensor wc = result_as(w, x.device().is_cpu() ? xc.dtype() : DType::kFloat32);
  Tensor dx = Tensor::empty(x.shape(), xc.dtype(), x.device());
  be.layernorm_backward_dx(dyc, xc, wc, mean, rstd, C, rc, dx);
  return result_as(dx, x.dtype());
}

}  // namespace sdlora
