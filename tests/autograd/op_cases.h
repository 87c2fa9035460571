// The differentiable op set as test cases: one function of Vars per op (and a few composites)
// with its float64 inputs. The CPU suite gradchecks each; the GPU suite runs each on CUDA and
// on the CPU in float32 and compares the gradients.
#pragma once

#include <string>
#include <vector>

#include "autograd/autograd.h"

namespace sdlora::test {

struct OpCase {
  std::string name;
  std::vector<Tensor> inputs;  // float64 on the CPU
  GradcheckFn f;               // device-generic: index tensors follow the inputs' device
  double rtol = 1e-5;          // gradcheck tolerance (float64)
  double atol = 1e-6;
};

std::vector<OpCase> op_cases();
// The cases' names, and one case by name. Test parameters are names: tensors kept by the test
// registry would outlive the allocator at exit.
std::vector<std::string> op_case_names();
OpCase op_case(const std::string& name);

}  // namespace sdlora::test
