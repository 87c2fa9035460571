// Random numbers: the counter-based generator's uniform and normal draws (the same streams on
// the CPU and CUDA for a seed and offset).
#include "tensor/ops_common.h"
#include "tensor/random.h"

namespace sdlora {

using namespace detail;

void uniform_(Tensor& t, uint64_t seed, uint64_t offset, double lo, double hi) {
  check_defined(t, "uniform_", "t");
  Backend& be = float_backend(t, "uniform_");
  if (needs_cpu_upcast(t)) {
    Tensor f = Tensor::empty(t.shape(), DType::kFloat32, t.device());
    be.uniform(f, seed, offset, lo, hi);
    t.copy_(cast(f, t.dtype()));
    return;
  }
  be.uniform(t, seed, offset, lo, hi);
}

void normal_(Tensor& t, uint64_t seed, uint64_t offset, double mean, double std) {
  check_defined(t, "normal_", "t");
  Backend& be = float_backend(t, "normal_");
  if (needs_cpu_upcast(t)) {
    Tensor f = Tensor::empty(t.shape(), DType::kFloat32, t.device());
    be.normal(f, seed, offset, mean, std);
    t.copy_(cast(f, t.dtype()));
    return;
  }
  be.normal(t, seed, offset, mean, std);
}

Tensor Generator::uniform(const Shape& shape, double lo, double hi, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  uniform_(t, seed_, offset_++, lo, hi);
  return t;
}

Tensor Generator::normal(const Shape& shape, double mean, double std, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  normal_(t, seed_, offset_++, mean, std);
  return t;
}

}  // namespace sdlora
