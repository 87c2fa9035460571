// bf16 on the CPU: every op case's output and input gradients computed in bfloat16 against the
// same case in float32 on the same bfloat16-rounded inputs, within bfloat16 tolerances; and the
// mixed-precision rules (float32 weights with bfloat16 activations: bfloat16 results, each
// gradient in its input's dtype, float32 weight gradients against a float32 reference).
#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "tensor/ops.h"
#include "tests/autograd/bf16_cases.h"
#include "tests/common/test_util.h"

namespace sdlora::test {
namespace {

// bfloat16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%); a case chains a few
// rounded steps, and gradients a few more, so errors are measured against the largest value.
constexpr double kOutputRel = 2e-2;
constexpr double kGradRel = 3e-2;

class Bf16Ops : public ::testing::TestWithParam<std::string> {};

TEST_P(Bf16Ops, GradientsMatchFloat32) {
  const OpCase c = op_case(GetParam());
  const Bf16Run bf = run_case_as(c, DType::kBFloat16, Device::cpu());
  const Bf16Run fp = run_case_as(c, DType::kFloat32, Device::cpu());
  EXPECT_TRUE(rel_close(bf.out, fp.out, kOutputRel, c.name + " output"));
  for (size_t i = 0; i < fp.grads.size(); ++i) {
    ASSERT_TRUE(bf.grads[i].defined()) << c.name << ": no bf16 gradient for input " << i;
    EXPECT_EQ(bf.grad_dtypes[i], DType::kBFloat16) << c.name << " input " << i;
    EXPECT_TRUE(rel_close(bf.grads[i], fp.grads[i], kGradRel,
                          c.name + " gradient of input " + std::to_string(i)));
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, Bf16Ops, ::testing::ValuesIn(op_case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// A bfloat16 x through float32 parameters: the mixed rules against the float32 computation on
// the same (rounded) values.
TEST(MixedPrecision, LinearWithFloat32WeightsGivesFloat32WeightGradients) {
  const Tensor x32 = cast(random_tensor({4, 5, 24}, 1), DType::kBFloat16).to(DType::kFloat32);
  const Tensor w32 = random_tensor({12, 24}, 2, -0.3, 0.3);
  const Tensor b32 = random_tensor({12}, 3);
  const Tensor dy = cast(random_tensor({4, 5, 12}, 4), DType::kBFloat16);

  Var xb(cast(x32, DType::kBFloat16), true), wb(w32, true), bb(b32, true);
  const Var yb = linear(xb, wb, bb);
  EXPECT_EQ(yb.dtype(), DType::kBFloat16);
  backward(yb, dy);
  EXPECT_EQ(xb.grad().dtype(), DType::kBFloat16);
  EXPECT_EQ(wb.grad().dtype(), DType::kFloat32);
  EXPECT_EQ(bb.grad().dtype(), DType::kFloat32);

  // The reference: float32 everywhere, the weight rounded as the mixed product rounds it.
  Var xf(x32, true), wf(cast(cast(w32, DType::kBFloat16), DType::kFloat32), true), bf(b32, true);
  backward(linear(xf, wf, bf), cast(dy, DType::kFloat32));
  EXPECT_TRUE(rel_close(cast(yb.data(), DType::kFloat32),
                        linear(Var(x32), Var(w32), Var(b32)).data(), 1e-2, "y"));
  // dW = dy^T x on bfloat16 operands with float32 accumulation and output: float32 accuracy.
  EXPECT_TRUE(rel_close(wb.grad(), wf.grad(), 1e-5, "dW"));
  EXPECT_TRUE(rel_close(bb.grad(), bf.grad(), 1e-5, "db"));
  EXPECT_TRUE(rel_close(cast(xb.grad(), DType::kFloat32), xf.grad(), 1e-2, "dx"));
}

TEST(MixedPrecision, MatmulAndElementwiseKeepEachInputsGradientDtype) {
  const Tensor a32 = cast(random_tensor({3, 6, 8}, 5), DType::kBFloat16).to(DType::kFloat32);
  const Tensor u32 = random_tensor({8, 4}, 6);
  const Tensor s32 = random_tensor({1, 4}, 7, 0.5, 1.5);
  auto f = [](const Var& a, const Var& u, const Var& s) { return sum(mul(matmul(a, u), s)); };

  Var ab(cast(a32, DType::kBFloat16), true), ub(u32, true), sb(s32, true);
  const Var lb = f(ab, ub, sb);
  backward(cast(lb, DType::kFloat32));
  EXPECT_EQ(ab.grad().dtype(), DType::kBFloat16);
  EXPECT_EQ(ub.grad().dtype(), DType::kFloat32);
  EXPECT_EQ(sb.grad().dtype(), DType::kFloat32);

  Var af(a32, true), uf(u32, true), sf(s32, true);
  backward(f(af, uf, sf));
  EXPECT_TRUE(rel_close(ub.grad(), uf.grad(), 2e-2, "dU"));
  EXPECT_TRUE(rel_close(sb.grad(), sf.grad(), 2e-2, "ds"));
  EXPECT_TRUE(rel_close(cast(ab.grad(), DType::kFloat32), af.grad(), 2e-2, "dA"));
}

TEST(MixedPrecision, ScaleByFloat32MagnitudeKeepsDtypes) {
  const Tensor x32 = cast(random_tensor({5, 7}, 8), DType::kBFloat16).to(DType::kFloat32);
  Var xb(cast(x32, DType::kBFloat16), true), sb(Tensor::full({1}, 0.8), true);
  const Var yb = scale(xb, sb);
  EXPECT_EQ(yb.dtype(), DType::kBFloat16);
  backward(cast(sum(yb), DType::kFloat32));
  EXPECT_EQ(sb.grad().dtype(), DType::kFloat32);
  EXPECT_NEAR(sb.grad().item(), sum(x32).item(), 1e-4 * (1.0 + std::abs(sum(x32).item())));
}

TEST(MixedPrecision, Float64WithFloat32IsRefused) {
  Var a(Tensor::zeros({2, 2}, DType::kFloat64), true), b(Tensor::zeros({2, 2}), true);
  EXPECT_NE(error_of([&] { matmul(a, b); }).find("float32 and bfloat16 only"), std::string::npos);
}

}  // namespace
}  // namespace sdlora::test
