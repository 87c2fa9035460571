// Helpers shared by the test suites: tolerance comparisons with named errors, error messages,
// the GPU skip.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace sdlora::test {

// Skips the current test, with the reason printed, when no GPU is present.
#define SDLORA_REQUIRE_GPU()                                                          \
  do {                                                                                \
    if (!::sdlora::cuda_available())                                                  \
      GTEST_SKIP() << (::sdlora::cuda_built() ? "no CUDA GPU present on this machine" \
                                              : "built without the CUDA backend");    \
  } while (0)

// Host float64 copy of any float tensor (any device, any float dtype).
std::vector<double> host_values(const Tensor& t);

// Checks |got - want| <= atol + rtol * |want| elementwise; NaN never passes. On failure reports
// the name, the shapes, the first few bad elements and the largest error.
::testing::AssertionResult all_close(const Tensor& got, const Tensor& want, double rtol,
                                     double atol, const std::string& name = "tensor");
::testing::AssertionResult all_close(const Tensor& got, const std::vector<double>& want,
                                     double rtol, double atol, const std::string& name = "tensor");

// Tolerances per dtype for comparing a CUDA result with the float32 CPU reference.
struct Tolerance {
  double rtol, atol;
};
Tolerance tolerance_for(DType dtype);

// Random float32 values in [lo, hi) from a fixed seed (the library's own generator).
Tensor random_tensor(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0,
                     DType dtype = DType::kFloat32, Device device = Device::cpu());

// Relative to the tensor's largest magnitude: max |got - want| <= rel * max |want|.
::testing::AssertionResult rel_close(const Tensor& got, const Tensor& want, double rel,
                                     const std::string& name);

// The message of the sdlora::Error that f throws, or "" when it throws none.
std::string error_of(const std::function<void()>& f);

}  // namespace sdlora::test
