// Softmax and log-softmax over the last dim on the CPU: naive reference, stability with large
// logits, and both backwards against finite differences in float64 and the analytic Jacobian.
#include <cmath>

#include "tests/tensor/ops_testing.h"

namespace sdlora::test {
namespace {

// Row-wise softmax (or log-softmax) of a row-major (rows, cols) array, straight from the formula
// with the row max subtracted.
std::vector<double> softmax_reference(const std::vector<double>& x, int64_t cols, bool log) {
  std::vector<double> y(x.size());
  for (size_t r = 0; r < x.size() / static_cast<size_t>(cols); ++r) {
    const double* row = &x[r * static_cast<size_t>(cols)];
    double mx = row[0];
    for (int64_t j = 1; j < cols; ++j) mx = std::max(mx, row[j]);
    double z = 0.0;
    for (int64_t j = 0; j < cols; ++j) z += std::exp(row[j] - mx);
    for (int64_t j = 0; j < cols; ++j)
      y[r * static_cast<size_t>(cols) + static_cast<size_t>(j)] =
          log ? row[j] - mx - std::log(z) : std::exp(row[j] - mx) / z;
  }
  return y;
}

TEST(OpsSoftmax, ForwardMatchesReference) {
  const std::vector<Shape> shapes = {{1, 1}, {197, 37}, {2, 3, 65}, {5}, {1, 1000}};
  uint64_t seed = 200;
  for (const Shape& shape : shapes) {
    for (DType dt : {DType::kFloat32, DType::kFloat64}) {
      const Tensor x = random_tensor(shape, seed++, -8.0, 8.0, dt);
      const std::vector<double> xv = host_values(x);
      const double rtol = dt == DType::kFloat32 ? 1e-6 : 1e-13;
      const Tensor y = softmax(x), ly = log_softmax(x);
      EXPECT_EQ(y.shape(), shape);
      EXPECT_EQ(y.dtype(), dt);
      EXPECT_TRUE(all_close(y, softmax_reference(xv, x.size(-1), false), rtol, 1e-30,
                            "softmax " + x.describe()));
      EXPECT_TRUE(all_close(ly, softmax_reference(xv, x.size(-1), true), rtol, rtol,
                            "log_softmax " + x.describe()));
      // rows sum to one
      EXPECT_TRUE(all_close(sum(y, -1),
                            std::vector<double>(static_cast<size_t>(x.numel() / x.size(-1)), 1.0),
                            0, dt == DType::kFloat32 ? 1e-5 : 1e-13, "row sums"));
    }
  }
}

TEST(OpsSoftmax, HandValuesAndStabilityWithLargeLogits) {
  // [1000, 1001]: naive exp overflows; the stable form gives [1 / (1 + e), e / (1 + e)].
  const double e = std::exp(1.0);
  for (DType dt : {DType::kFloat32, DType::kFloat64}) {
    const Tensor x = make({1000, 1001, -1000, -1001, 0, 0}, {3, 2}, dt);
    const double tol = dt == DType::kFloat32 ? 1e-6 : 1e-14;
    EXPECT_TRUE(all_close(softmax(x),
                          {1 / (1 + e), e / (1 + e), e / (1 + e), 1 / (1 + e), 0.5, 0.5}, tol, 0,
                          "softmax"));
    const double l = std::log(1 + e);
    EXPECT_TRUE(all_close(log_softmax(x), {-l, 1 - l, 1 - l, -l, -std::log(2.0), -std::log(2.0)},
                          tol, 0, "log_softmax"));
  }
  // -inf entries get probability 0 (log-probability -inf); a NaN makes its row NaN and leaves
  // the other rows alone (float32 exponentiates in float32, float64 in double)
  for (DType dt : {DType::kFloat64, DType::kFloat32}) {
    const Tensor y = softmax(make({-INFINITY, 0.0, 0.0}, {1, 3}, dt));
    EXPECT_TRUE(all_close(y, {0.0, 0.5, 0.5}, 0, 0, "softmax with -inf"));
    const std::vector<double> ly =
        host_values(log_softmax(make({-INFINITY, 0.0, 0.0}, {1, 3}, dt)));
    EXPECT_EQ(ly[0], -INFINITY);
    EXPECT_NEAR(ly[1], -std::log(2.0), 1e-7);
    for (bool log : {false, true}) {
      const Tensor x = make({1.0, NAN, 2.0, 1.0, 2.0, 3.0}, {2, 3}, dt);
      const std::vector<double> v = host_values(log ? log_softmax(x) : softmax(x));
      for (int j = 0; j < 3; ++j) EXPECT_TRUE(std::isnan(v[static_cast<size_t>(j)])) << j;
      for (int j = 3; j < 6; ++j) EXPECT_FALSE(std::isnan(v[static_cast<size_t>(j)])) << j;
    }
  }
}

TEST(OpsSoftmax, BackwardMatchesFiniteDifferences) {
  const Tensor x = random_tensor({4, 9}, 210, -3.0, 3.0, DType::kFloat64);
  const Tensor g = random_tensor({4, 9}, 211, -1.0, 1.0, DType::kFloat64);
  // d/dx sum(softmax(x) * g) and d/dx sum(log_softmax(x) * g)
  const std::vector<double> fd =
      numeric_grad(x, [&](const Tensor& xx) { return dot(softmax(xx), g); });
  EXPECT_TRUE(all_close(softmax_backward(softmax(x), g), fd, 1e-7, 1e-9, "softmax_backward"));
  const std::vector<double> fdl =
      numeric_grad(x, [&](const Tensor& xx) { return dot(log_softmax(xx), g); });
  EXPECT_TRUE(
      all_close(log_softmax_backward(log_softmax(x), g), fdl, 1e-7, 1e-9, "log_softmax_backward"));
}

TEST(OpsSoftmax, BackwardMatchesAnalyticJacobian) {
  // dx_i = sum_j J_ji dy_j with J_ji = y_j ([i == j] - y_i) for softmax, [i == j] - y_i (of
  // softmax) for log-softmax; float32 inputs at an awkward shape.
  const int64_t rows = 197, cols = 37;
  const Tensor x = random_tensor({rows, cols}, 220, -4.0, 4.0);
  const Tensor dy = random_tensor({rows, cols}, 221, -1.0, 1.0);
  const Tensor y = softmax(x), ly = log_softmax(x);
  const std::vector<double> yv = host_values(y), dyv = host_values(dy);
  std::vector<double> want(yv.size()), want_log(yv.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < cols; ++i) {
      double s = 0.0, sl = 0.0;
      for (int64_t j = 0; j < cols; ++j) {
        const double yj = yv[static_cast<size_t>(r * cols + j)],
                     yi = yv[static_cast<size_t>(r * cols + i)];
        const double dyj = dyv[static_cast<size_t>(r * cols + j)];
        s += yj * ((i == j ? 1.0 : 0.0) - yi) * dyj;
        sl += ((i == j ? 1.0 : 0.0) - yi) * dyj;
      }
      want[static_cast<size_t>(r * cols + i)] = s;
      want_log[static_cast<size_t>(r * cols + i)] = sl;
    }
  EXPECT_TRUE(all_close(softmax_backward(y, dy), want, 1e-5, 1e-7, "softmax_backward float32"));
  EXPECT_TRUE(all_close(log_softmax_backward(ly, dy), want_log, 1e-5, 1e-6,
                        "log_softmax_backward float32"));
}

TEST(OpsSoftmax, BFloat16) {
  const Tensor x = random_tensor({3, 37}, 230, -4.0, 4.0, DType::kBFloat16);
  const Tensor xd = cast(x, DType::kFloat64);
  const Tensor y = softmax(x);
  EXPECT_EQ(y.dtype(), DType::kBFloat16);
  EXPECT_TRUE(all_close(y, softmax(xd), 8e-3, 1e-6, "bfloat16 softmax"));
  EXPECT_TRUE(all_close(log_softmax(x), log_softmax(xd), 8e-3, 1e-2, "bfloat16 log_softmax"));
  const Tensor dy = random_tensor({3, 37}, 231, -1.0, 1.0, DType::kBFloat16);
  const Tensor dx = softmax_backward(y, dy);
  EXPECT_EQ(dx.dtype(), DType::kBFloat16);
  EXPECT_TRUE(all_close(dx, softmax_backward(cast(y, DType::kFloat64), cast(dy, DType::kFloat64)),
                        2e-2, 1e-3, "bfloat16 softmax_backward"));
}

TEST(OpsSoftmax, BadArgumentsNameTheOp) {
  const Tensor y = Tensor::zeros({2, 3});
  EXPECT_TRUE(throws_naming(
      [&] {
        softmax_backward(y, Tensor::zeros({3, 2}));
      },
      "softmax_backward"));
  EXPECT_TRUE(throws_naming(
      [&] {
        log_softmax_backward(y, Tensor::zeros({2, 3}, DType::kFloat64));
      },
      "log_softmax_backward"));
  EXPECT_TRUE(throws_naming([&] { softmax(Tensor::zeros({2, 3}, DType::kInt64)); }, "softmax"));
  EXPECT_TRUE(throws_naming([&] { log_softmax(Tensor::zeros({2, 0})); }, "log_softmax"));
  EXPECT_TRUE(throws_naming([&] { softmax(Tensor::scalar<float>(1.f)); }, "softmax"));
}

}  // namespace
}  // namespace sdlora::test
