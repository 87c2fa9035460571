// Argument checks and dispatch shared by the ops files.
#include "tensor/ops_common.h"

namespace sdlora {

Backend& backend_for(Device device) {
  if (device.is_cpu()) return cpu_backend();
#ifdef SDLORA_WITH_CUDA
  return cuda_backend();
#else
  SDLORA_THROW("no backend for ", device.str(), ": this build has no CUDA backend");
#endif
}

namespace detail {

void check_defined(const Tensor& x, const char* op, const char* name) {
  SDLORA_CHECK(x.defined(), op, ": ", name, " is an undefined tensor");
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  SDLORA_CHECK(a.device() == b.device(), op, ": operands on different devices: ", a.describe(),
               " and ", b.describe());
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  SDLORA_CHECK(a.dtype() == b.dtype(), op, ": operands of different dtypes: ", a.describe(),
               " and ", b.describe());
}

void check_float(const Tensor& x, const char* op) {
  SDLORA_CHECK(is_floating(x.dtype()), op, ": expected a float tensor, got ", x.describe());
}

void check_mixed_float(const Tensor& x, DType out, const char* op) {
  auto ok = [](DType t) { return t == DType::kFloat32 || t == DType::kBFloat16; };
  SDLORA_CHECK(ok(x.dtype()) && ok(out), op,
               ": mixed precision takes float32 and bfloat16 only, got ", x.describe(), " -> ",
               dtype_name(out));
}

void check_index(const Tensor& x, const char* op) {
  SDLORA_CHECK(x.dtype() == DType::kInt32 || x.dtype() == DType::kInt64, op,
               ": expected an int32 or int64 index tensor, got ", x.describe());
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op, const Tensor& x) {
  SDLORA_CHECK(dim >= -ndim && dim < ndim, op, ": dimension ", dim, " out of range for ",
               x.describe());
  return dim < 0 ? dim + ndim : dim;
}

Backend& float_backend(const Tensor& x, const char* op) {
  check_float(x, op);
  SDLORA_CHECK(!(x.device().is_cuda() && x.dtype() == DType::kFloat64), op,
               ": float64 runs on the CPU only (it exists for gradient checks), got ",
               x.describe());
  return backend_for(x.device());
}

Tensor compute_view(const Tensor& x) { return needs_cpu_upcast(x) ? cast(x, DType::kFloat32) : x; }

Tensor result_as(const Tensor& y, DType dtype) { return y.dtype() == dtype ? y : cast(y, dtype); }

AxisPlan axis_plan(const Shape& shape, int64_t dim) {
  AxisPlan p;
  for (int64_t i = 0; i < dim; ++i) p.outer *= shape[static_cast<size_t>(i)];
  p.n = shape[static_cast<size_t>(dim)];
  for (size_t i = static_cast<size_t>(dim) + 1; i < shape.size(); ++i) p.inner *= shape[i];
  return p;
}

}  // namespace detail
}  // namespace sdlora
