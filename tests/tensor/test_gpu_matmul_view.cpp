// matmul_view on CUDA against the CPU: the attention layout (q, k, v read in place from one qkv
// buffer, two batch levels, scores and token-layout output), float32 and bfloat16.
#include <gtest/gtest.h>

#include "tensor/ops.h"
#include "tests/tensor/gpu_compare.h"

namespace sdlora::test {
namespace {

TEST(GpuMatmulView, AttentionLayoutMatchesCpu) {
  SDLORA_REQUIRE_GPU();
  for (DType dt : {DType::kFloat32, DType::kBFloat16}) {
    const int64_t B = 3, N = 197, H = 4, hd = 64, C = H * hd;
    const Pair qkv = random_pair({B, N, 3 * C}, 1, dt);
    auto head = [&](const Tensor& base, int64_t part) {
      return MatrixView{base, part * C, N, hd, 3 * C, hd, N * 3 * C};
    };
    Tensor s_cpu = Tensor::zeros({B, H, N, N}, dt), s_gpu = s_cpu.to(gpu());
    Tensor o_cpu = Tensor::zeros({B, N, C}, dt), o_gpu = o_cpu.to(gpu());
    for (int dev = 0; dev < 2; ++dev) {
      const Tensor& base = dev ? qkv.gpu : qkv.cpu;
      Tensor& s = dev ? s_gpu : s_cpu;
      Tensor& o = dev ? o_gpu : o_cpu;
      matmul_view(head(base, 0), false, head(base, 1), true,
                  MatrixView{s, 0, N, N, N, N * N, H * N * N}, H, B, 0.125f);
      matmul_view(MatrixView{s, 0, N, N, N, N * N, H * N * N}, false, head(base, 2), false,
                  MatrixView{o, 0, N, hd, C, hd, N * C}, H, B);
    }
    const Tolerance ts = sum_tol(dt, hd), to = sum_tol(dt, N * hd);
    EXPECT_TRUE(all_close(s_gpu, s_cpu, ts.rtol, ts.atol, "scores"));
    EXPECT_TRUE(all_close(o_gpu, o_cpu, to.rtol, to.atol, "output"));
  }
}

}  // namespace
}  // namespace sdlora::test
