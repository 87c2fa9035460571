// bf16 on CUDA against bf16 on the CPU: every op case's output and gradients (the CPU computes
// bfloat16 in float32 and rounds each op's result, CUDA rounds in its kernels: both round the
// same values, so they agree within a few bfloat16 steps), and the mixed-precision product's
// float32 output. Skips without a GPU.
#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "tensor/ops.h"
#include "tests/autograd/bf16_cases.h"
#include "tests/common/test_util.h"

namespace sdlora::test {
namespace {

class GpuBf16Ops : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuBf16Ops, MatchCpuBf16) {
  SDLORA_REQUIRE_GPU();
  const OpCase c = op_case(GetParam());
  const Bf16Run gpu = run_case_as(c, DType::kBFloat16, Device::cuda());
  const Bf16Run cpu = run_case_as(c, DType::kBFloat16, Device::cpu());
  EXPECT_TRUE(rel_close(gpu.out, cpu.out, 2e-2, c.name + " output"));
  for (size_t i = 0; i < cpu.grads.size(); ++i) {
    ASSERT_TRUE(gpu.grads[i].defined()) << c.name << ": no gradient for input " << i;
    EXPECT_EQ(gpu.grad_dtypes[i], DType::kBFloat16);
    EXPECT_TRUE(rel_close(gpu.grads[i], cpu.grads[i], 3e-2,
                          c.name + " gradient of input " + std::to_string(i)));
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, GpuBf16Ops, ::testing::ValuesIn(op_case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(GpuMixedPrecision, Bf16ProductWithFloat32OutputMatchesCpu) {
  SDLORA_REQUIRE_GPU();
  const Tensor a = cast(random_tensor({3, 40, 24}, 1), DType::kBFloat16);
  const Tensor b = cast(random_tensor({3, 24, 16}, 2), DType::kBFloat16);
  const Tensor want = matmul(a, b, false, false, DType::kFloat32);  // CPU: float32 BLAS
  const Tensor got =
      matmul(a.to(Device::cuda()), b.to(Device::cuda()), false, false, DType::kFloat32);
  EXPECT_EQ(got.dtype(), DType::kFloat32);
  EXPECT_TRUE(all_close(got.to(Device::cpu()), want, 1e-5, 1e-5, "bf16 x bf16 -> float32"));
  // Mixed elementwise and reductions with their casts fused.
  const Tensor w = random_tensor({16}, 3);
  const Tensor c = cast(matmul(a, b), DType::kBFloat16);
  const Tensor ref = add(c, w, DType::kFloat32);
  EXPECT_TRUE(
      all_close(add(c.to(Device::cuda()), w.to(Device::cuda()), DType::kFloat32).to(Device::cpu()),
                ref, 1e-6, 1e-6, "bf16 + float32 -> float32"));
  EXPECT_TRUE(all_close(sum(c.to(Device::cuda()), 1, false, DType::kFloat32).to(Device::cpu()),
                        sum(c, 1, false, DType::kFloat32), 1e-5, 1e-5, "bf16 sum -> float32"));
}

}  // namespace
}  // namespace sdlora::test
