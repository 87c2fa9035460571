// Creation and conversion: fill, arange, cast (dtype conversion on the tensor's device).
#include <cmath>

#include "tensor/ops_common.h"

namespace sdlora {

using namespace detail;

void fill_(Tensor& t, double value) {
  check_defined(t, "fill_", "t");
  backend_for(t.device()).fill(t, value);
}

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  SDLORA_CHECK(step != 0.0, "arange: step must be non-zero");
  const double span = (end - start) / step;
  const int64_t n = span > 0 ? static_cast<int64_t>(std::ceil(span)) : 0;
  Tensor out = Tensor::empty({n}, dtype, device);
  backend_for(device).arange(out, start, step);
  return out;
}

Tensor cast(const Tensor& x, DType dtype) {
  check_defined(x, "cast", "x");
  SDLORA_CHECK(
      !(x.device().is_cuda() && (x.dtype() == DType::kFloat64 || dtype == DType::kFloat64)),
      "cast: float64 runs on the CPU only, got ", x.describe(), " -> ", dtype_name(dtype));
  Tensor out = Tensor::empty(x.shape(), dtype, x.device());
  backend_for(x.device()).cast(x, out);
  return out;
}

}  // namespace sdlora
