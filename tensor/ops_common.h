// Shared argument checks and dispatch helpers of the ops files (internal to tensor/).
#pragma once

#include <string>

#include "tensor/backend.h"
#include "tensor/ops.h"

namespace sdlora::detail {

void check_defined(const Tensor& x, const char* op, const char* name);
// Same device; the error names the op and both operands.
void check_same_device(const Tensor& a, const Tensor& b, const char* op);
void check_same_dtype(const Tensor& a, const Tensor& b, const char* op);
void check_float(const Tensor& x, const char* op);
// A mixed-precision op reading x and writing `out`: both float32 or bfloat16.
void check_mixed_float(const Tensor& x, DType out, const char* op);
void check_index(const Tensor& x, const char* op);  // int32 or int64
// Normalises a possibly negative dimension; the error names the op and the tensor.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op, const Tensor& x);

// The backend for a float computation on x's device. float64 runs on the CPU only.
Backend& float_backend(const Tensor& x, const char* op);

// bfloat16 on the CPU is computed in float32: compute_view converts, result_as converts back.
inline bool needs_cpu_upcast(const Tensor& x) {
  return x.device().is_cpu() && x.dtype() == DType::kBFloat16;
}
Tensor compute_view(const Tensor& x);
Tensor result_as(const Tensor& y, DType dtype);

AxisPlan axis_plan(const Shape& shape, int64_t dim);

}  // namespace sdlora::detail
