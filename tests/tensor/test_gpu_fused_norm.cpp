// The frozen LayerNorm's dx-only backward on CUDA against the CPU, float32 and bfloat16, at
// awkward widths (one column, 197, 768, 1000) and one or many rows.
#include <gtest/gtest.h>

#include "tensor/ops.h"
#include "tests/tensor/gpu_compare.h"

namespace sdlora::test {
namespace {

TEST(GpuLayerNormDx, MatchesTheCpu) {
  SDLORA_REQUIRE_GPU();
  for (DType dt : {DType::kFloat32, DType::kBFloat16}) {
    for (const Shape& s : {Shape{1, 1}, Shape{3, 197}, Shape{2, 197, 768}, Shape{5, 1000}}) {
      const Pair x = random_pair(s, 1, dt, -2.0, 2.0), dy = random_pair(s, 2, dt);
      const Pair w = random_pair({s.back()}, 3, DType::kFloat32, 0.5, 1.5),
                 b = random_pair({s.back()}, 4);
      const LayerNormOut fc = layernorm(x.cpu, w.cpu, b.cpu, 1e-6);
      const LayerNormOut fg = layernorm(x.gpu, w.gpu, b.gpu, 1e-6);
      const Tensor want = layernorm_backward_dx(dy.cpu, x.cpu, w.cpu, fc.mean, fc.rstd);
      const Tensor got = layernorm_backward_dx(dy.gpu, x.gpu, w.gpu, fg.mean, fg.rstd);
      const Tolerance t = sum_tol(dt, s.back());
      EXPECT_TRUE(all_close(cast(got.to(Device::cpu()), DType::kFloat32),
                            cast(want, DType::kFloat32), t.rtol, t.atol,
                            std::string("dx ") + dtype_name(dt)));
      // With the residual stream's gradient folded in.
      const Pair res = random_pair(s, 5, dt, -3.0, 3.0);
      const Tensor want_r = layernorm_backward_dx(dy.cpu, x.cpu, w.cpu, fc.mean, fc.rstd, res.cpu);
      const Tensor got_r = layernorm_backward_dx(dy.gpu, x.gpu, w.gpu, fg.mean, fg.rstd, res.gpu);
      EXPECT_TRUE(all_close(cast(got_r.to(Device::cpu()), DType::kFloat32),
                            cast(want_r, DType::kFloat32), t.rtol,
                            t.atol + (dt == DType::kBFloat16 ? 3e-2 : 0.0),
                            std::string("folded dx ") + dtype_name(dt)));
    }
  }
}

}  // namespace
}  // namespace sdlora::test
