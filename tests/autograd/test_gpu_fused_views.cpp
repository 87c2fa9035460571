// CUDA against the CPU for the strided-view nodes: attention read in place from qkv (and cuDNN's
// fused attention where available) and the low-rank updates accumulated into qkv's columns,
// outputs and gradients, float32 (TF32 off) and bfloat16 activations with float32 factors.
#include <gtest/gtest.h>

#include <cstdio>

#include "autograd/autograd.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora::test {
namespace {

class Tf32Off {
 public:
  Tf32Off() : previous_(allow_tf32()) { set_allow_tf32(false); }
  ~Tf32Off() { set_allow_tf32(previous_); }

 private:
  bool previous_;
};

struct ViewsRun {
  Tensor out;
  std::vector<Tensor> grads;
};

// The SD-LoRA shape of the block: t = x D^T, qkv += [t_q U_q^T | 0 | t_v U_v^T], attention.
ViewsRun run(Device device, DType act) {
  const int64_t B = 2, N = 197, H = 3, hd = 64, C = H * hd, rq = 4, rv = 6;
  Var qkv(cast(random_tensor({B, N, 3 * C}, 1), act).to(device), true);
  Var t(cast(random_tensor({B, N, rq + rv}, 2), act).to(device), true);
  Var uq(random_tensor({C, rq}, 3, -0.2, 0.2).to(device), true);
  Var uv(random_tensor({C, rv}, 4, -0.2, 0.2).to(device), true);
  const Var y =
      attention_qkv(add_lowrank_columns_(mul(qkv, 1.0), t, {{0, 0, uq}, {2 * C, rq, uv}}), H);
  backward(sum(mul(y, Var(cast(random_tensor({B, N, C}, 5), act).to(device)))));
  ViewsRun r{y.data().to(Device::cpu()), {}};
  for (const Var& v : {qkv, t, uq, uv}) r.grads.push_back(v.grad().to(Device::cpu()));
  return r;
}

TEST(GpuFusedViews, AttentionAndLowRankColumnsMatchCpu) {
  SDLORA_REQUIRE_GPU();
  Tf32Off tf32_off;
  for (DType act : {DType::kFloat32, DType::kBFloat16}) {
    const ViewsRun cpu = run(Device::cpu(), act), gpu = run(Device::cuda(), act);
    const double rel = act == DType::kBFloat16 ? 3e-2 : 1e-4;
    EXPECT_TRUE(rel_close(gpu.out, cpu.out, rel, "output"));
    const char* names[] = {"dqkv", "dt", "duq", "duv"};
    for (size_t i = 0; i < cpu.grads.size(); ++i)
      EXPECT_TRUE(rel_close(gpu.grads[i], cpu.grads[i], rel, names[i])) << dtype_name(act);
  }
}

// bfloat16 attention on CUDA (cuDNN's SDPA where the build and the device have it, otherwise the
// strided products) against the float32 CPU composition on the same bfloat16 values.
TEST(GpuFusedViews, Bf16AttentionMatchesTheFloat32Cpu) {
  SDLORA_REQUIRE_GPU();
  const int64_t B = 2, N = 197, H = 3, C = H * 64;
  const Tensor qkv16 = cast(random_tensor({B, N, 3 * C}, 6, -2.0, 2.0), DType::kBFloat16);
  const Tensor w = random_tensor({B, N, C}, 7);
  auto run_on = [&](Device d, DType dt, Tensor& grad) {
    Var x(cast(qkv16, dt).to(d), true);
    const Var y = attention_qkv(x, H);
    backward(sum(mul(y, Var(cast(w, dt).to(d)))));
    grad = cast(x.grad(), DType::kFloat32).to(Device::cpu());
    return cast(y.data(), DType::kFloat32).to(Device::cpu());
  };
  Tensor g_ref, g_gpu;
  const Tensor y_ref = run_on(Device::cpu(), DType::kFloat32, g_ref);
  const Tensor y_gpu = run_on(Device::cuda(), DType::kBFloat16, g_gpu);
  std::printf("fused attention available: %s\n",
              fused_attention_available(qkv16.to(Device::cuda()), H) ? "yes" : "no");
  EXPECT_TRUE(rel_close(y_gpu, y_ref, 2e-2, "output"));
  EXPECT_TRUE(rel_close(g_gpu, g_ref, 3e-2, "dqkv"));
}

}  // namespace
}  // namespace sdlora::test
