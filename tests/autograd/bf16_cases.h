// Running the op cases (op_cases.h) in bfloat16 and in float32 on the same bfloat16-rounded
// inputs, for the bf16 suites (CPU: bf16 against float32; GPU: CUDA bf16 against CPU bf16).
#pragma once

#include <vector>

#include "tests/autograd/op_cases.h"

namespace sdlora::test {

struct Bf16Run {
  Tensor out;                 // float32, on the CPU
  std::vector<Tensor> grads;  // float32, on the CPU, one per input (undefined when missing)
  std::vector<DType> grad_dtypes;
};

// Inputs rounded to bfloat16 once, then held as `dtype` on `device`; backward against a fixed
// random projection of the output (rounded to the output's dtype).
Bf16Run run_case_as(const OpCase& c, DType dtype, Device device);

}  // namespace sdlora::test
