// Matrix products on the CPU: exact small-integer products for every transpose combination,
// batched and shared operands, alpha/beta accumulation, float64, bfloat16 and awkward shapes.
#include <cmath>
#include <random>

#include "tests/tensor/ops_testing.h"

namespace sdlora::test {
namespace {

// Integers in [-3, 3]: their products and short sums are exact in float32.
std::vector<double> small_ints(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-3, 3);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& e : v) e = dist(rng);
  return v;
}

// C[b] = op(A[b]) op(B[b]) with the given batch strides (0 = shared); op(A) (m, k), op(B) (k, n).
std::vector<double> gemm_reference(const std::vector<double>& a, const std::vector<double>& b,
                                   int64_t batch, int64_t m, int64_t n, int64_t k, bool ta, bool tb,
                                   int64_t stride_a, int64_t stride_b) {
  std::vector<double> c(static_cast<size_t>(batch * m * n), 0.0);
  for (int64_t bi = 0; bi < batch; ++bi)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0.0;
        for (int64_t p = 0; p < k; ++p) {
          const double x = ta ? a[static_cast<size_t>(bi * stride_a + p * m + i)]
                              : a[static_cast<size_t>(bi * stride_a + i * k + p)];
          const double y = tb ? b[static_cast<size_t>(bi * stride_b + j * k + p)]
                              : b[static_cast<size_t>(bi * stride_b + p * n + j)];
          s += x * y;
        }
        c[static_cast<size_t>((bi * m + i) * n + j)] = s;
      }
  return c;
}

// Shapes of a and b for a product with the given batch dims (empty = shared 2-D operand).
Shape operand_shape(const Shape& batch, int64_t rows, int64_t cols) {
  Shape s = batch;
  s.push_back(rows);
  s.push_back(cols);
  return s;
}

struct ProductCase {
  Shape batch_a, batch_b;
  int64_t m, n, k;
};

void check_exact_product(const ProductCase& pc, bool ta, bool tb, DType dt, uint32_t seed) {
  const Shape sa = operand_shape(pc.batch_a, ta ? pc.k : pc.m, ta ? pc.m : pc.k);
  const Shape sb = operand_shape(pc.batch_b, tb ? pc.n : pc.k, tb ? pc.k : pc.n);
  const std::vector<double> av = small_ints(shape_numel(sa), seed);
  const std::vector<double> bv = small_ints(shape_numel(sb), seed + 1);
  const Shape& batch = pc.batch_a.empty() ? pc.batch_b : pc.batch_a;
  const int64_t nb = shape_numel(batch);
  const std::vector<double> want =
      gemm_reference(av, bv, nb, pc.m, pc.n, pc.k, ta, tb, pc.batch_a.empty() ? 0 : pc.m * pc.k,
                     pc.batch_b.empty() ? 0 : pc.k * pc.n);
  const Tensor c = matmul(make(av, sa, dt), make(bv, sb, dt), ta, tb);
  const std::string what = std::string("matmul ") + shape_str(sa) + (ta ? "^T" : "") + " x " +
                           shape_str(sb) + (tb ? "^T" : "") + " " + dtype_name(dt);
  ASSERT_EQ(c.shape(), operand_shape(batch, pc.m, pc.n)) << what;
  EXPECT_EQ(c.dtype(), dt);
  EXPECT_EQ(host_values(c), want) << what;
}

TEST(OpsMatmul, ExactSmallIntegerProductsAllTransposes) {
  const std::vector<ProductCase> cases = {
      {{}, {}, 7, 9, 5},          // plain 2-D
      {{}, {}, 1, 1, 1},          // 1 x 1
      {{}, {}, 33, 1, 65},        // matrix-vector
      {{}, {}, 1, 47, 31},        // vector-matrix
      {{3}, {3}, 4, 5, 6},        // batched
      {{1}, {1}, 5, 3, 2},        // batch 1
      {{2, 3}, {2, 3}, 3, 4, 5},  // two batch dims
      {{3}, {}, 4, 5, 6},         // b shared
      {{}, {3}, 4, 5, 6},         // a shared
      {{2, 2}, {}, 5, 3, 7},      // b shared by a 2-D batch
      {{}, {4}, 1, 9, 3},
  };
  uint32_t seed = 1;
  for (const ProductCase& pc : cases)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        check_exact_product(pc, ta, tb, DType::kFloat32, seed);
        check_exact_product(pc, ta, tb, DType::kFloat64, seed);
        seed += 2;
      }
}

TEST(OpsMatmul, HandComputedProduct) {
  const Tensor a = make({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = make({7, 8, 9, 10, 11, 12}, {3, 2});
  EXPECT_EQ(matmul(a, b).to_vector<float>(), (std::vector<float>{58, 64, 139, 154}));
  // a^T a is (3, 3)
  EXPECT_EQ(matmul(a, a, true, false).to_vector<float>(),
            (std::vector<float>{17, 22, 27, 22, 29, 36, 27, 36, 45}));
  // a a^T is (2, 2)
  EXPECT_EQ(matmul(a, a, false, true).to_vector<float>(), (std::vector<float>{14, 32, 32, 77}));
}

TEST(OpsMatmul, AlphaBetaAccumulate) {
  for (DType dt : {DType::kFloat32, DType::kFloat64}) {
    const std::vector<double> av = small_ints(3 * 4 * 6, 5), bv = small_ints(6 * 5, 6);
    const std::vector<double> cv = small_ints(3 * 4 * 5, 7);
    const Tensor a = make(av, {3, 4, 6}, dt), b = make(bv, {5, 6}, dt);
    Tensor c = make(cv, {3, 4, 5}, dt);
    matmul_out(a, b, c, false, true, 2.0f, -0.5f);
    const std::vector<double> prod = gemm_reference(av, bv, 3, 4, 5, 6, false, true, 24, 0);
    std::vector<double> want(prod.size());
    for (size_t i = 0; i < want.size(); ++i) want[i] = 2.0 * prod[i] - 0.5 * cv[i];
    EXPECT_EQ(host_values(c), want) << dtype_name(dt);
    // beta = 1 accumulates a second product
    matmul_out(a, b, c, false, true, 1.0f, 1.0f);
    for (size_t i = 0; i < want.size(); ++i) want[i] += prod[i];
    EXPECT_EQ(host_values(c), want) << dtype_name(dt);
  }
  // beta = 0 never reads c: NaN there does not leak into the result.
  Tensor c = Tensor::full({2, 2}, NAN);
  matmul_out(make({1, 2, 3, 4}, {2, 2}), make({1, 0, 0, 1}, {2, 2}), c);
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  // a shared a with a batched, transposed b, scaled
  const std::vector<double> av = small_ints(4 * 3, 8), bv = small_ints(2 * 5 * 3, 9);
  Tensor c2 = Tensor::zeros({2, 4, 5});
  matmul_out(make(av, {4, 3}), make(bv, {2, 5, 3}), c2, false, true, 0.5f, 0.0f);
  std::vector<double> want2 = gemm_reference(av, bv, 2, 4, 5, 3, false, true, 0, 15);
  for (double& e : want2) e *= 0.5;
  EXPECT_EQ(host_values(c2), want2);
}

TEST(OpsMatmul, Float64AndFloat32RandomAwkwardShapes) {
  struct Case {
    Shape a, b;
    bool ta, tb;
  };
  const std::vector<Case> cases = {
      {{197, 33}, {33, 70}, false, false},
      {{2, 197, 64}, {2, 48, 64}, false, true},  // attention-like q k^T
      {{3, 37, 197}, {3, 37, 65}, true, false},  // a^T b, batched
      {{5, 197, 96}, {96, 31}, false, false},    // tokens times a shared weight
      {{96, 19}, {4, 96, 23}, true, false},      // shared, transposed a
  };
  uint64_t seed = 40;
  for (const Case& c : cases) {
    const Tensor a = random_tensor(c.a, seed++, -1, 1, DType::kFloat64);
    const Tensor b = random_tensor(c.b, seed++, -1, 1, DType::kFloat64);
    const int64_t m = c.ta ? a.size(-1) : a.size(-2), k = c.ta ? a.size(-2) : a.size(-1);
    const int64_t n = c.tb ? b.size(-2) : b.size(-1);
    const int64_t batch = std::max(a.ndim() == 3 ? a.size(0) : 1, b.ndim() == 3 ? b.size(0) : 1);
    const std::vector<double> want =
        gemm_reference(host_values(a), host_values(b), batch, m, n, k, c.ta, c.tb,
                       a.ndim() == 3 ? m * k : 0, b.ndim() == 3 ? k * n : 0);
    const std::string what = shape_str(c.a) + " x " + shape_str(c.b);
    EXPECT_TRUE(all_close(matmul(a, b, c.ta, c.tb), want, 1e-13, 1e-13, "float64 " + what));
    // float32: k terms of size <= 1, each rounded once, then summed.
    const Tensor got32 = matmul(cast(a, DType::kFloat32), cast(b, DType::kFloat32), c.ta, c.tb);
    EXPECT_TRUE(
        all_close(got32, want, 1e-5, 2e-6 * std::sqrt(static_cast<double>(k)), "float32 " + what));
  }
}

TEST(OpsMatmul, BFloat16) {
  const Tensor a = random_tensor({2, 37, 48}, 70, -1, 1, DType::kBFloat16);
  const Tensor b = random_tensor({48, 29}, 71, -1, 1, DType::kBFloat16);
  const Tensor c = matmul(a, b);
  EXPECT_EQ(c.dtype(), DType::kBFloat16);
  // Reference from the same bfloat16 inputs in float64; the result is rounded to bfloat16 once.
  const Tensor want = matmul(cast(a, DType::kFloat64), cast(b, DType::kFloat64));
  EXPECT_TRUE(all_close(c, want, 8e-3, 1e-3, "bfloat16 matmul"));
  Tensor acc = cast(Tensor::full({2, 37, 29}, 1.0), DType::kBFloat16);
  matmul_out(a, b, acc, false, false, 1.0f, 1.0f);
  EXPECT_TRUE(all_close(acc, add(want, 1.0), 8e-3, 1e-2, "bfloat16 matmul_out"));
}

TEST(OpsMatmul, EmptyInnerDimensionGivesBetaTimesC) {
  const Tensor a = Tensor::empty({3, 0}, DType::kFloat32),
               b = Tensor::empty({0, 4}, DType::kFloat32);
  EXPECT_EQ(matmul(a, b).to_vector<float>(), std::vector<float>(12, 0.f));
  Tensor c = Tensor::full({3, 4}, 2.0);
  matmul_out(a, b, c, false, false, 1.0f, 0.5f);
  EXPECT_EQ(c.to_vector<float>(), std::vector<float>(12, 1.f));
  EXPECT_EQ(matmul(Tensor::empty({0, 5}, DType::kFloat32), Tensor::empty({5, 4}, DType::kFloat32))
                .shape(),
            (Shape{0, 4}));
}

TEST(OpsMatmul, BadArgumentsNameTheOp) {
  const Tensor a = Tensor::zeros({4, 5}), b = Tensor::zeros({6, 7});
  EXPECT_TRUE(throws_naming([&] { matmul(a, b); }, "matmul"));
  EXPECT_TRUE(throws_naming([&] { matmul(a, b); }, "[4, 5]"));
  EXPECT_TRUE(throws_naming([&] { matmul(a, Tensor::zeros({5, 3}), true, false); }, "inner"));
  EXPECT_TRUE(throws_naming(
      [&] {
        matmul(Tensor::zeros({2, 4, 5}), Tensor::zeros({3, 5, 2}));
      },
      "batch"));
  EXPECT_TRUE(throws_naming([&] { matmul(Tensor::zeros({5}), Tensor::zeros({5, 2})); }, "matmul"));
  EXPECT_TRUE(throws_naming([&] { matmul(a, Tensor::zeros({5, 2}, DType::kFloat64)); }, "matmul"));
  EXPECT_TRUE(throws_naming(
      [&] {
        matmul(Tensor::zeros({4, 5}, DType::kInt32), Tensor::zeros({5, 2}, DType::kInt32));
      },
      "matmul"));
  Tensor c = Tensor::zeros({4, 3});
  EXPECT_TRUE(throws_naming([&] { matmul_out(a, Tensor::zeros({5, 2}), c); }, "matmul"));
}

}  // namespace
}  // namespace sdlora::test
