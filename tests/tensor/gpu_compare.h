// Helpers of the GPU suites: the same random inputs on the CPU and on the GPU, exact comparison
// of any dtype, and per-dtype tolerances for CUDA results against the CPU reference.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora::test {

inline Device gpu() { return Device::cuda(0); }

// The same values on both devices (generated on the CPU, in `dtype`, then copied).
struct Pair {
  Tensor cpu, gpu;
};
inline Pair random_pair(const Shape& shape, uint64_t seed, DType dtype = DType::kFloat32,
                        double lo = -1.0, double hi = 1.0) {
  Tensor c = random_tensor(shape, seed, lo, hi, dtype);
  return {c, c.to(gpu())};
}
inline Pair pair_of(const Tensor& cpu) { return {cpu, cpu.to(gpu())}; }

// Bitwise equality of two tensors of one dtype and shape (any devices).
inline ::testing::AssertionResult same_bits(const Tensor& got, const Tensor& want,
                                            const std::string& name) {
  if (got.shape() != want.shape() || got.dtype() != want.dtype())
    return ::testing::AssertionFailure()
           << name << ": got " << got.describe() << ", expected " << want.describe();
  const Tensor g = got.to(Device::cpu()), w = want.to(Device::cpu());
  const size_t es = dtype_size(g.dtype());
  const auto* gp = static_cast<const unsigned char*>(g.raw_data());
  const auto* wp = static_cast<const unsigned char*>(w.raw_data());
  for (int64_t i = 0; i < g.numel(); ++i) {
    if (std::memcmp(gp + i * es, wp + i * es, es) != 0) {
      ::testing::AssertionResult r = ::testing::AssertionFailure();
      r << name << " " << got.describe() << ": first difference at element " << i;
      if (is_floating(g.dtype()))
        r << " (got " << cast(g, DType::kFloat64).to_vector<double>()[static_cast<size_t>(i)]
          << ", want " << cast(w, DType::kFloat64).to_vector<double>()[static_cast<size_t>(i)]
          << ")";
      return r;
    }
  }
  return ::testing::AssertionSuccess();
}

// Elementwise maths: both sides compute in float from identical inputs, so float32 differs by a
// few ulp of the library functions and bfloat16 by at most one bfloat16 rounding step.
inline Tolerance elementwise_tol(DType dtype) {
  return dtype == DType::kBFloat16 ? Tolerance{1e-2, 1e-3} : Tolerance{2e-6, 1e-6};
}

// Reductions and products over `terms` terms of magnitude about 1: float accumulation in a
// different order gives errors growing like sqrt(terms).
inline Tolerance sum_tol(DType dtype, int64_t terms) {
  const double s = std::sqrt(static_cast<double>(terms < 1 ? 1 : terms));
  return dtype == DType::kBFloat16 ? Tolerance{1e-2, 2e-3 * s} : Tolerance{1e-5, 2e-6 * s};
}

}  // namespace sdlora::test
