// CUDA against the CPU: every op case's output and gradients in float32, the graph's device
// memory released after backward, and the spirals MLP trained on the GPU.
#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "tensor/ops.h"
#include "tests/autograd/mlp_spirals.h"
#include "tests/autograd/op_cases.h"
#include "tests/common/test_util.h"

namespace sdlora::test {
namespace {

struct CaseRun {
  Tensor out;                 // on the CPU
  std::vector<Tensor> grads;  // on the CPU, one per input
};

// The case in float32 on `device`, differentiated against a fixed random projection.
CaseRun run_case(const OpCase& c, Device device) {
  std::vector<Var> vars;
  for (const Tensor& x : c.inputs) vars.emplace_back(cast(x, DType::kFloat32).to(device), true);
  const Var out = c.f(vars);
  backward(out, random_tensor(out.shape(), 99, -1.0, 1.0, DType::kFloat32, device));
  CaseRun r{out.data().to(Device::cpu()), {}};
  for (const Var& v : vars) {
    EXPECT_TRUE(v.grad().defined()) << c.name << ": no gradient for an input";
    EXPECT_EQ(v.grad().device(), device);
    r.grads.push_back(v.grad().defined() ? v.grad().to(Device::cpu()) : Tensor());
  }
  return r;
}

class GpuOps : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuOps, OutputAndGradientsMatchCpu) {
  SDLORA_REQUIRE_GPU();
  const test::Tf32Scope tf32_off(false);  // true float32 products on both sides
  const OpCase c = op_case(GetParam());
  const CaseRun gpu = run_case(c, Device::cuda());
  const CaseRun cpu = run_case(c, Device::cpu());
  // Outputs: float32 tolerance. Gradients pass through more reductions in a different order
  // (and composites through many ops), so they get a factor 10 on both.
  const Tolerance t = tolerance_for(DType::kFloat32);
  EXPECT_TRUE(all_close(gpu.out, cpu.out, t.rtol, t.atol, c.name + " output"));
  for (size_t i = 0; i < cpu.grads.size(); ++i) {
    if (!gpu.grads[i].defined() || !cpu.grads[i].defined()) continue;
    EXPECT_TRUE(all_close(gpu.grads[i], cpu.grads[i], 10 * t.rtol, 10 * t.atol,
                          c.name + " gradient of input " + std::to_string(i)));
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, GpuOps, ::testing::ValuesIn(op_case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(GpuMemory, GraphIsReleasedByBackward) {
  SDLORA_REQUIRE_GPU();
  const Device dev = Device::cuda();
  auto live = [&] { return memory_stats(dev).live_bytes; };
  Var w(random_tensor({64, 32}, 1, -0.2, 0.2, DType::kFloat32, dev), true);
  Var ln_w(Tensor::full({64}, 1.0, DType::kFloat32, dev), true);
  Var ln_b(Tensor::zeros({64}, DType::kFloat32, dev), true);
  Var head(random_tensor({10, 64}, 2, -0.2, 0.2, DType::kFloat32, dev), true);
  const Tensor x = random_tensor({8, 16, 32}, 3, -1.0, 1.0, DType::kFloat32, dev);
  const Tensor y = Tensor::from_vector<int64_t>({0, 1, 2, 3, 4, 5, 6, 7}, {8}, dev);
  auto loss_of = [&] {
    const Var h = layernorm(gelu(linear(Var(x), w)), ln_w, ln_b, 1e-6);  // (8, 16, 64)
    const Var q = permute(reshape(h, {8, 16, 4, 16}), {0, 2, 1, 3});     // (8, 4, 16, 16)
    const Var o = reshape(permute(attention(q, q, q), {0, 2, 1, 3}), {8, 16, 64});
    return cross_entropy(linear(mean(o, 1), head), y, 0, 8);
  };
  backward(loss_of());  // allocates the parameters' gradients
  const int64_t baseline = live();
  {
    const Var loss = loss_of();
    EXPECT_GT(live() - baseline, 64 * 1024) << "the graph holds its saved activations";
    backward(loss);
    EXPECT_EQ(live() - baseline,
              static_cast<int64_t>(CachingPool::size_class(loss.data().nbytes())));
  }
  EXPECT_EQ(live(), baseline);
}

TEST(GpuMlp, LearnsThreeSpiralsWithSgdOnCuda) {
  SDLORA_REQUIRE_GPU();
  const test::Tf32Scope tf32_off(false);  // true float32 products on both sides
  const MlpRun run = train_mlp_on_spirals(Device::cuda());
  std::printf("spirals on cuda: loss %.4f -> %.4f, accuracy %.1f%%\n", run.initial_loss,
              run.final_loss, 100.0 * run.accuracy);
  EXPECT_LT(run.final_loss, 0.25 * run.initial_loss);
  EXPECT_GE(run.accuracy, 0.95);
}

}  // namespace
}  // namespace sdlora::test
