// LayerNorm backward for frozen weight and bias (dx only) against the full layernorm_backward
// and against central differences of the forward, float64.
#include <gtest/gtest.h>

#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora::test {
namespace {

TEST(LayerNormDx, MatchesTheFullBackward) {
  for (DType dt : {DType::kFloat64, DType::kFloat32}) {
    const Tensor x = random_tensor({3, 5, 17}, 1, -2.0, 2.0, dt),
                 w = random_tensor({17}, 2, 0.5, 1.5, dt), b = random_tensor({17}, 3, -1, 1, dt),
                 dy = random_tensor({3, 5, 17}, 4, -1, 1, dt);
    const LayerNormOut f = layernorm(x, w, b, 1e-5);
    const Tensor dx = layernorm_backward_dx(dy, x, w, f.mean, f.rstd);
    const LayerNormGrads g = layernorm_backward(dy, x, w, f.mean, f.rstd);
    const double tol = dt == DType::kFloat64 ? 1e-12 : 1e-6;
    EXPECT_EQ(dx.dtype(), dt);
    EXPECT_TRUE(all_close(dx, g.dx, tol, tol, std::string("dx ") + dtype_name(dt)));
  }
}

// sum(dy * layernorm(x)) differentiated by central differences: an independent reference.
TEST(LayerNormDx, MatchesFiniteDifferences) {
  const Tensor x = random_tensor({2, 6}, 5, -2.0, 2.0, DType::kFloat64),
               w = random_tensor({6}, 6, 0.5, 1.5, DType::kFloat64),
               b = random_tensor({6}, 7, -1, 1, DType::kFloat64),
               dy = random_tensor({2, 6}, 8, -1, 1, DType::kFloat64);
  const LayerNormOut f = layernorm(x, w, b, 1e-6);
  const std::vector<double> dx = host_values(layernorm_backward_dx(dy, x, w, f.mean, f.rstd));
  std::vector<double> X = host_values(x), want(X.size());
  const double eps = 1e-6;
  auto s = [&](const std::vector<double>& v) {
    const Tensor t = Tensor::from_vector<double>(v, x.shape());
    return sum(mul(dy, layernorm(t, w, b, 1e-6).y)).item();
  };
  for (size_t i = 0; i < X.size(); ++i) {
    std::vector<double> p = X, m = X;
    p[i] += eps;
    m[i] -= eps;
    want[i] = (s(p) - s(m)) / (2 * eps);
  }
  for (size_t i = 0; i < X.size(); ++i) EXPECT_NEAR(dx[i], want[i], 1e-6) << "element " << i;
}

// The residual stream's gradient folded in: the same as dx plus the residual added separately.
TEST(LayerNormDx, FoldsTheResidualGradient) {
  for (DType dt : {DType::kFloat64, DType::kFloat32, DType::kBFloat16}) {
    const Tensor x = cast(random_tensor({3, 5, 17}, 13, -2.0, 2.0), dt),
                 w = random_tensor({17}, 14, 0.5, 1.5), b = random_tensor({17}, 15),
                 dy = cast(random_tensor({3, 5, 17}, 16), dt),
                 res = cast(random_tensor({3, 5, 17}, 17, -3.0, 3.0), dt);
    const Tensor wt = dt == DType::kFloat64 ? cast(w, dt) : w;
    const Tensor bt = dt == DType::kFloat64 ? cast(b, dt) : b;
    const LayerNormOut f = layernorm(x, wt, bt, 1e-5);
    const Tensor fused = layernorm_backward_dx(dy, x, wt, f.mean, f.rstd, res);
    const Tensor composed = add(res, layernorm_backward_dx(dy, x, wt, f.mean, f.rstd));
    EXPECT_EQ(fused.dtype(), dt);
    const double tol = dt == DType::kFloat64 ? 1e-12 : dt == DType::kFloat32 ? 1e-6 : 1e-2;
    EXPECT_TRUE(all_close(cast(fused, DType::kFloat64), cast(composed, DType::kFloat64), tol, tol,
                          std::string("folded dx ") + dtype_name(dt)));
  }
  const Tensor x = random_tensor({4, 8}, 18), w = random_tensor({8}, 19, 0.5, 1.5),
               b = random_tensor({8}, 20), dy = random_tensor({4, 8}, 21);
  const LayerNormOut f = layernorm(x, w, b, 1e-6);
  EXPECT_TRUE(throws_naming(
      [&] {
        layernorm_backward_dx(dy, x, w, f.mean, f.rstd, random_tensor({4, 7}, 22));
      },
      "residual gradient"));
}

TEST(LayerNormDx, Bfloat16AndBadStatistics) {
  const Tensor x = random_tensor({4, 8}, 9), w = random_tensor({8}, 10, 0.5, 1.5),
               b = random_tensor({8}, 11), dy = random_tensor({4, 8}, 12);
  const DType h = DType::kBFloat16;
  const LayerNormOut f = layernorm(cast(x, h), w, b, 1e-6);
  const Tensor dx = layernorm_backward_dx(cast(dy, h), cast(x, h), w, f.mean, f.rstd);
  EXPECT_EQ(dx.dtype(), h);
  EXPECT_TRUE(rel_close(dx, layernorm_backward(cast(dy, h), cast(x, h), w, f.mean, f.rstd).dx, 1e-2,
                        "bf16 dx"));
  EXPECT_NE(error_of([&] {
              layernorm_backward_dx(dy, x, w, f.rstd.reshape({2, 2}), f.rstd);
            }).find("statistics"),
            std::string::npos);
}

}  // namespace
}  // namespace sdlora::test
