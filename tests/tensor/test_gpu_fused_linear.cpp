// The fused linear ops on CUDA (cuBLASLt bias / residual / BGRADB epilogues, the fused GELU
// backward with its bias gradient) against the CPU reference, float32 and bfloat16, at awkward
// shapes (one row, 197 tokens, sizes not multiples of 32).
#include <gtest/gtest.h>

#include <cmath>

#include "tensor/ops.h"
#include "tests/tensor/gpu_compare.h"

namespace sdlora::test {
namespace {

struct Dims {
  int64_t rows, in, out;
};
const Dims kDims[] = {{1, 3, 5}, {197, 96, 33}, {2 * 197, 64, 256}};

Tolerance product_tol(DType dtype, int64_t k) {
  const double s = std::sqrt(static_cast<double>(k));
  return dtype == DType::kBFloat16 ? Tolerance{2e-2, 2e-3 * s} : Tolerance{1e-5, 5e-6 * s};
}

Tensor on_cpu_f32(const Tensor& t) { return cast(t.to(Device::cpu()), DType::kFloat32); }

class GpuFusedLinear : public ::testing::TestWithParam<DType> {};

TEST_P(GpuFusedLinear, ForwardEpiloguesMatchTheCpu) {
  SDLORA_REQUIRE_GPU();
  const DType dt = GetParam();
  for (const Dims& d : kDims) {
    const Pair x = random_pair({d.rows, d.in}, 1, dt), w = random_pair({d.out, d.in}, 2, dt),
               b = random_pair({d.out}, 3, dt), r = random_pair({d.rows, d.out}, 4, dt);
    const Tolerance t = product_tol(dt, d.in);
    const std::string at =
        " at " + std::to_string(d.rows) + "x" + std::to_string(d.in) + "x" + std::to_string(d.out);
    EXPECT_TRUE(all_close(on_cpu_f32(linear(x.gpu, w.gpu, b.gpu)),
                          on_cpu_f32(linear(x.cpu, w.cpu, b.cpu)), t.rtol, t.atol, "bias" + at));
    EXPECT_TRUE(all_close(on_cpu_f32(linear(x.gpu, w.gpu, b.gpu, r.gpu)),
                          on_cpu_f32(linear(x.cpu, w.cpu, b.cpu, r.cpu)), t.rtol, t.atol,
                          "bias + residual" + at));
    const LinearGeluOut g = linear_gelu(x.gpu, w.gpu, b.gpu), c = linear_gelu(x.cpu, w.cpu, b.cpu);
    EXPECT_TRUE(all_close(on_cpu_f32(g.pre), on_cpu_f32(c.pre), t.rtol, t.atol, "pre" + at));
    EXPECT_TRUE(all_close(on_cpu_f32(g.y), on_cpu_f32(c.y), t.rtol, t.atol, "gelu" + at));
  }
}

TEST_P(GpuFusedLinear, BackwardMatchesTheCpu) {
  SDLORA_REQUIRE_GPU();
  const DType dt = GetParam();
  for (const Dims& d : kDims) {
    const Pair x = random_pair({d.rows, d.in}, 5, dt), w = random_pair({d.out, d.in}, 6, dt),
               dy = random_pair({d.rows, d.out}, 7, dt), pre = random_pair({d.rows, d.out}, 8, dt);
    LinearGradRequest q;
    q.dx = q.dw = q.db = true;
    q.dx_dtype = dt;
    q.dw_dtype = q.db_dtype = DType::kFloat32;  // float32 master weights under bfloat16
    const LinearGrads g = linear_backward(dy.gpu, x.gpu, w.gpu, q);
    const LinearGrads c = linear_backward(dy.cpu, x.cpu, w.cpu, q);
    const Tolerance tk = product_tol(dt, d.out), tr = product_tol(dt, d.rows);
    EXPECT_TRUE(all_close(on_cpu_f32(g.dx), on_cpu_f32(c.dx), tk.rtol, tk.atol, "dx"));
    EXPECT_TRUE(all_close(on_cpu_f32(g.dw), on_cpu_f32(c.dw), tr.rtol, tr.atol, "dw"));
    EXPECT_TRUE(all_close(on_cpu_f32(g.db), on_cpu_f32(c.db), tr.rtol, tr.atol, "db (BGRADB)"));
    const GeluBgradOut gg = gelu_backward_bgrad(pre.gpu, dy.gpu, DType::kFloat32);
    const GeluBgradOut gc = gelu_backward_bgrad(pre.cpu, dy.cpu, DType::kFloat32);
    const Tolerance te = elementwise_tol(dt), ts = sum_tol(dt, d.rows);
    EXPECT_TRUE(all_close(on_cpu_f32(gg.dx), on_cpu_f32(gc.dx), te.rtol, te.atol, "dgelu"));
    EXPECT_TRUE(all_close(gg.db.to(Device::cpu()), gc.db, ts.rtol, ts.atol, "dgelu bias grad"));
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, GpuFusedLinear,
                         ::testing::Values(DType::kFloat32, DType::kBFloat16),
                         [](const ::testing::TestParamInfo<DType>& info) {
                           return std::string(dtype_name(info.param));
                         });

}  // namespace
}  // namespace sdlora::test
