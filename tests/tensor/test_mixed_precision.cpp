// The mixed-precision tensor ops on the CPU against naive float64 loops over the same bfloat16
// values: bf16 x bf16 -> float32 products (batched, transposed, shared operands, beta), binary
// ops over float32 / bfloat16 mixes with the output dtype given, the in-place add of a float32
// bias into bfloat16, sums written as another dtype, and the errors for what is refused.
#include <gtest/gtest.h>

#include <vector>

#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora::test {
namespace {

Tensor bf16_random(const Shape& s, uint64_t seed) {
  return cast(random_tensor(s, seed), DType::kBFloat16);
}

// Row-major C = op(A) op(B) in float64, A (m, k) or (k, m) stored, likewise B.
std::vector<double> naive_matmul(const std::vector<double>& a, const std::vector<double>& b,
                                 int64_t m, int64_t n, int64_t k, bool ta, bool tb) {
  std::vector<double> c(static_cast<size_t>(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = a[static_cast<size_t>(ta ? p * m + i : i * k + p)];
        const double bv = b[static_cast<size_t>(tb ? j * k + p : p * n + j)];
        acc += av * bv;
      }
      c[static_cast<size_t>(i * n + j)] = acc;
    }
  return c;
}

TEST(MixedMatmul, Bf16InputsFloat32OutputIsExactFloat32Accumulation) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const int64_t m = 7, n = 5, k = 33;
      const Tensor a = bf16_random(ta ? Shape{k, m} : Shape{m, k}, 1);
      const Tensor b = bf16_random(tb ? Shape{n, k} : Shape{k, n}, 2);
      const Tensor c = matmul(a, b, ta, tb, DType::kFloat32);
      ASSERT_EQ(c.dtype(), DType::kFloat32);
      const std::vector<double> want =
          naive_matmul(host_values(a), host_values(b), m, n, k, ta, tb);
      // float32 accumulation of exact bf16 products: float32 rounding only, no bf16 rounding.
      EXPECT_TRUE(all_close(c, want, 1e-6, 1e-6, "bf16 product, float32 out"));
      // The bf16 result of the same product is that value rounded once to bfloat16.
      const Tensor cb = matmul(a, b, ta, tb);
      EXPECT_EQ(cb.dtype(), DType::kBFloat16);
      EXPECT_TRUE(all_close(cb, host_values(cast(c, DType::kBFloat16)), 0.0, 0.0, "bf16 out"));
    }
}

TEST(MixedMatmul, BatchedSharedOperandAndBetaAccumulate) {
  const Tensor a = bf16_random({3, 4, 6}, 3);
  const Tensor b = bf16_random({6, 2}, 4);  // shared by the batch
  Tensor c = random_tensor({3, 4, 2}, 5);
  const std::vector<double> c0 = host_values(c);
  matmul_out(a, b, c, false, false, 2.0f, 0.5f);
  const std::vector<double> av = host_values(a), bv = host_values(b);
  std::vector<double> want(c0.size());
  for (int64_t bi = 0; bi < 3; ++bi) {
    const std::vector<double> ab(av.begin() + bi * 24, av.begin() + (bi + 1) * 24);
    const std::vector<double> prod = naive_matmul(ab, bv, 4, 2, 6, false, false);
    for (size_t i = 0; i < 8; ++i) want[bi * 8 + i] = 2.0 * prod[i] + 0.5 * c0[bi * 8 + i];
  }
  EXPECT_TRUE(all_close(c, want, 1e-6, 1e-6, "alpha op(a) op(b) + beta c"));
}

TEST(MixedElementwise, BinaryOpsReadEitherDtypeAndWriteTheGivenOne) {
  const Tensor a = bf16_random({4, 6}, 6);
  const Tensor b = random_tensor({6}, 7, 0.5, 1.5);  // float32, broadcast over rows
  const std::vector<double> av = host_values(a), bv = host_values(b);
  struct Case {
    Tensor (*op)(const Tensor&, const Tensor&, DType);
    double (*ref)(double, double);
  };
  const Case cases[] = {{add, [](double x, double y) { return x + y; }},
                        {sub, [](double x, double y) { return x - y; }},
                        {mul, [](double x, double y) { return x * y; }},
                        {div, [](double x, double y) { return x / y; }}};
  for (const Case& c : cases) {
    std::vector<double> want(av.size());
    for (size_t i = 0; i < av.size(); ++i) want[i] = c.ref(av[i], bv[i % 6]);
    const Tensor f = c.op(a, b, DType::kFloat32);
    EXPECT_EQ(f.dtype(), DType::kFloat32);
    EXPECT_TRUE(all_close(f, want, 1e-6, 1e-7, "float32 out"));
    const Tensor h = c.op(a, b, DType::kBFloat16);
    EXPECT_EQ(h.dtype(), DType::kBFloat16);
    EXPECT_TRUE(all_close(h, host_values(cast(f, DType::kBFloat16)), 0.0, 0.0, "bf16 out"));
  }
}

TEST(MixedElementwise, InPlaceAddOfAFloat32BiasIntoBf16) {
  Tensor y = bf16_random({3, 5}, 8);
  const std::vector<double> y0 = host_values(y);
  const Tensor bias = random_tensor({5}, 9);
  const std::vector<double> bv = host_values(bias);
  add_(y, bias);
  ASSERT_EQ(y.dtype(), DType::kBFloat16);
  std::vector<double> want(y0.size());
  for (size_t i = 0; i < y0.size(); ++i)
    want[i] = static_cast<double>(
        BFloat16::to_float(BFloat16::from_float(static_cast<float>(y0[i] + bv[i % 5]))));
  EXPECT_TRUE(all_close(y, want, 0.0, 1e-7, "y += bias"));
}

TEST(MixedReduce, SumWritesTheGivenDtype) {
  const Tensor x = bf16_random({6, 50}, 10);
  const std::vector<double> xv = host_values(x);
  std::vector<double> cols(50, 0.0);
  double all = 0.0;
  for (size_t i = 0; i < xv.size(); ++i) {
    cols[i % 50] += xv[i];
    all += xv[i];
  }
  const Tensor s = sum(x, 0, false, DType::kFloat32);
  EXPECT_EQ(s.dtype(), DType::kFloat32);
  EXPECT_TRUE(all_close(s, cols, 1e-6, 1e-6, "column sums"));
  const Tensor t = sum(x, DType::kFloat32);
  EXPECT_EQ(t.dtype(), DType::kFloat32);
  EXPECT_NEAR(t.item(), all, 1e-5);
  const Tensor back = sum(random_tensor({4, 3}, 11), 1, true, DType::kBFloat16);
  EXPECT_EQ(back.dtype(), DType::kBFloat16);
  EXPECT_EQ(back.shape(), (Shape{4, 1}));
}

TEST(MixedPrecisionErrors, RefusedCombinationsNameTheOp) {
  const Tensor d = Tensor::zeros({2, 2}, DType::kFloat64);
  const Tensor f = Tensor::zeros({2, 2});
  EXPECT_NE(error_of([&] { add(d, f, DType::kFloat32); }).find("add: mixed precision"),
            std::string::npos);
  EXPECT_NE(error_of([&] { sum(f, 0, false, DType::kFloat64); }).find("sum: mixed precision"),
            std::string::npos);
  // A float32 product has no float32-in / bfloat16-out form, and plain ops do not promote.
  Tensor c = Tensor::zeros({2, 2}, DType::kBFloat16);
  EXPECT_NE(error_of([&] { matmul_out(f, f, c); }).find("operands of different dtypes"),
            std::string::npos);
  EXPECT_NE(error_of([&] { add(f, cast(f, DType::kBFloat16)); }).find("different dtypes"),
            std::string::npos);
}

}  // namespace
}  // namespace sdlora::test
