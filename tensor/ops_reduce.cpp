// Reductions (sum, mean, max, argmax) over one dimension or all: checks, shapes, dispatch.
#include "tensor/ops_common.h"

namespace sdlora {

using namespace detail;

namespace {

// want: the result's float dtype (sum and mean), or kSameDType for x's own.
constexpr DType kSameDType = DType::kUInt8;  // not a float: "the dtype of x"

Tensor reduce_dim(ReduceOp op, const Tensor& x, int64_t dim, bool keepdim, const char* name,
                  DType want = kSameDType) {
  check_defined(x, name, "x");
  Backend& be = float_backend(x, name);
  if (want == kSameDType) want = x.dtype();
  if (op != ReduceOp::kArgmax && want != x.dtype()) check_mixed_float(x, want, name);
  SDLORA_CHECK(x.ndim() >= 1, name, ": needs at least one dimension, got ", x.describe());
  const int64_t d = wrap_dim(dim, x.ndim(), name, x);
  SDLORA_CHECK(x.shape()[static_cast<size_t>(d)] > 0 || op == ReduceOp::kSum, name,
               ": reduction over an empty dimension of ", x.describe());
  const AxisPlan plan = axis_plan(x.shape(), d);
  Shape out_shape = x.shape();
  if (keepdim)
    out_shape[static_cast<size_t>(d)] = 1;
  else
    out_shape.erase(out_shape.begin() + d);
  const Tensor xc = compute_view(x);
  // The CPU computes bfloat16 in float32 and casts the result; CUDA writes `want` directly.
  const DType out_dtype = op == ReduceOp::kArgmax ? DType::kInt64
                          : x.device().is_cpu()   ? xc.dtype()
                                                  : want;
  Tensor out = Tensor::empty(out_shape, out_dtype, x.device());
  be.reduce(op, xc, plan, out);
  return op == ReduceOp::kArgmax ? out : result_as(out, want);
}

Tensor reduce_all(ReduceOp op, const Tensor& x, const char* name, DType want = kSameDType) {
  check_defined(x, name, "x");
  SDLORA_CHECK(x.numel() > 0 || op == ReduceOp::kSum, name, ": reduction of the empty tensor ",
               x.describe());
  return reduce_dim(op, x.reshape({x.numel()}), 0, false, name, want);
}

}  // namespace

Tensor sum(const Tensor& x, int64_t dim, bool keepdim) {
  return reduce_dim(ReduceOp::kSum, x, dim, keepdim, "sum");
}
Tensor mean(const Tensor& x, int64_t dim, bool keepdim) {
  return reduce_dim(ReduceOp::kMean, x, dim, keepdim, "mean");
}
Tensor max(const Tensor& x, int64_t dim, bool keepdim) {
  return reduce_dim(ReduceOp::kMax, x, dim, keepdim, "max");
}
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  return reduce_dim(ReduceOp::kArgmax, x, dim, keepdim, "argmax");
}
Tensor sum(const Tensor& x) { return reduce_all(ReduceOp::kSum, x, "sum"); }
Tensor sum(const Tensor& x, int64_t dim, bool keepdim, DType out) {
  return reduce_dim(ReduceOp::kSum, x, dim, keepdim, "sum", out);
}
Tensor sum(const Tensor& x, DType out) { return reduce_all(ReduceOp::kSum, x, "sum", out); }
Tensor mean(const Tensor& x) { return reduce_all(ReduceOp::kMean, x, "mean"); }
Tensor max(const Tensor& x) { return reduce_all(ReduceOp::kMax, x, "max"); }
Tensor argmax(const Tensor& x) { return reduce_all(ReduceOp::kArgmax, x, "argmax"); }

}  // namespace sdlora
