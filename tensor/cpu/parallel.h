// Helpers shared by the CPU kernels: an OpenMP loop pragma that vanishes in builds without
// OpenMP (so they stay warning-free), float32 / float64 dispatch, and index reading.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

// SDLORA_OMP_FOR(work): `#pragma omp parallel for`, only when `work` (elements touched) is large
// enough to pay for waking the threads (a few microseconds). SDLORA_OMP_FOR_MEMORY(work) is the
// same for loops of one add or multiply per element, which run at memory speed: one thread
// streams several GB/s, so they are split only from a quarter of a million
// elements on.
#ifdef _OPENMP
#define SDLORA_PRAGMA(x) _Pragma(#x)
#define SDLORA_OMP_FOR(work) SDLORA_PRAGMA(omp parallel for if ((work) > 32768))
#define SDLORA_OMP_FOR_MEMORY(work) SDLORA_PRAGMA(omp parallel for if ((work) > 262144))
#else
#define SDLORA_OMP_FOR(work)
#define SDLORA_OMP_FOR_MEMORY(work)
#endif

namespace sdlora::cpu {

// Calls f(T{}) with T = float or double for a float32 / float64 tensor; other dtypes throw.
template <typename F>
void dispatch_float(DType dtype, const char* kernel, F&& f) {
  switch (dtype) {
    case DType::kFloat32:
      f(float{});
      return;
    case DType::kFloat64:
      f(double{});
      return;
    default:
      SDLORA_THROW("cpu ", kernel, ": expected float32 or float64, got ", dtype_name(dtype));
  }
}

// The values of an int32 or int64 index tensor, widened to int64.
inline std::vector<int64_t> index_values(const Tensor& index) {
  std::vector<int64_t> v(static_cast<size_t>(index.numel()));
  if (index.dtype() == DType::kInt32) {
    const int32_t* p = index.data<int32_t>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = p[i];
  } else {
    const int64_t* p = index.data<int64_t>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = p[i];
  }
  return v;
}

}  // namespace sdlora::cpu
