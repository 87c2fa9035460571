// The op cases in bfloat16 and float32 on identical (bfloat16-rounded) inputs.
#include "tests/autograd/bf16_cases.h"

#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora::test {

Bf16Run run_case_as(const OpCase& c, DType dtype, Device device) {
  std::vector<Var> vars;
  for (const Tensor& x : c.inputs)
    vars.emplace_back(cast(cast(x, DType::kBFloat16), dtype).to(device), true);
  const Var out = c.f(vars);
  const Tensor r = random_tensor(out.shape(), 99, -1.0, 1.0, DType::kBFloat16);
  backward(out, cast(r, out.dtype()).to(device));
  Bf16Run run{cast(out.data().to(Device::cpu()), DType::kFloat32), {}, {}};
  for (const Var& v : vars) {
    run.grads.push_back(v.grad().defined() ? cast(v.grad().to(Device::cpu()), DType::kFloat32)
                                           : Tensor());
    run.grad_dtypes.push_back(v.grad().defined() ? v.grad().dtype() : DType::kUInt8);
  }
  return run;
}

}  // namespace sdlora::test
