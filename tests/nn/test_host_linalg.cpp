// The host linear algebra behind SD-LoRA's norms and the KD fit (nn/host_linalg.h): the Gram
// trick against the dense product, and the PSD solve against a direct solution, a singular system
// (minimum-norm solution) and a residual check.
#include <gtest/gtest.h>

#include <cmath>

#include "nn/host_linalg.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora {
namespace {

double dense_inner(const Tensor& ui, const Tensor& di, const Tensor& uj, const Tensor& dj) {
  const Tensor a = matmul(ui, di), b = matmul(uj, dj);
  double s = 0.0;
  const auto va = cast(a, DType::kFloat64).to_vector<double>();
  const auto vb = cast(b, DType::kFloat64).to_vector<double>();
  for (size_t k = 0; k < va.size(); ++k) s += va[k] * vb[k];
  return s;
}

TEST(HostLinalg, GramTrickEqualsTheDenseInnerProduct) {
  const Tensor ui = test::random_tensor({7, 3}, 1), di = test::random_tensor({3, 5}, 2);
  const Tensor uj = test::random_tensor({7, 2}, 3), dj = test::random_tensor({2, 5}, 4);
  const double want = dense_inner(ui, di, uj, dj);
  EXPECT_NEAR(product_inner(host_matrix(ui), host_matrix(di), host_matrix(uj), host_matrix(dj)),
              want, 1e-6 * std::max(1.0, std::fabs(want)));
  const double self = dense_inner(ui, di, ui, di);
  EXPECT_NEAR(product_inner(host_matrix(ui), host_matrix(di), host_matrix(ui), host_matrix(di)),
              self, 1e-6 * self);
  const HostMatrix m = host_matrix(Tensor::from_vector<float>({3, 4}, {1, 2}));
  EXPECT_DOUBLE_EQ(frobenius(m), 5.0);
}

TEST(HostLinalg, SolvesAPositiveDefiniteSystem) {
  // G = [[4, 1, 0], [1, 3, 1], [0, 1, 2]], c = [1, -2, 0.5]: g = G c.
  const std::vector<double> G{4, 1, 0, 1, 3, 1, 0, 1, 2}, c{1, -2, 0.5};
  std::vector<double> g(3, 0.0);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) g[i] += G[i * 3 + j] * c[j];
  const std::vector<double> got = solve_psd(G, g, 3);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(got[i], c[i], 1e-12) << i;
}

TEST(HostLinalg, SingularSystemGivesTheMinimumNormSolution) {
  // Two identical unit directions: G = [[1, 1], [1, 1]], g = [1, 1]. Every c with c0 + c1 = 1
  // fits; the minimum-norm one is [0.5, 0.5].
  const std::vector<double> got = solve_psd({1, 1, 1, 1}, {1, 1}, 2);
  EXPECT_NEAR(got[0], 0.5, 1e-12);
  EXPECT_NEAR(got[1], 0.5, 1e-12);
  // All zero: the zero solution, not NaN.
  const std::vector<double> zero = solve_psd({0, 0, 0, 0}, {0, 0}, 2);
  EXPECT_EQ(zero[0], 0.0);
  EXPECT_EQ(zero[1], 0.0);
}

}  // namespace
}  // namespace sdlora
