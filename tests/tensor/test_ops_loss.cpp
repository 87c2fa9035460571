// Cross-entropy on the CPU: the batch-mean loss against a naive reference and hand values,
// stability with large logits, the backward against the analytic gradient and finite differences.
#include <cmath>

#include "tests/tensor/ops_testing.h"

namespace sdlora::test {
namespace {

// mean over rows of logsumexp(row) - row[label], and its gradient (softmax - onehot) * dloss / B
double ce_reference(const std::vector<double>& x, const std::vector<int64_t>& labels, int64_t C,
                    double dloss, std::vector<double>* grad) {
  const size_t B = labels.size();
  double total = 0.0;
  if (grad) grad->assign(x.size(), 0.0);
  for (size_t b = 0; b < B; ++b) {
    const double* row = &x[b * static_cast<size_t>(C)];
    double mx = row[0];
    for (int64_t j = 1; j < C; ++j) mx = std::max(mx, row[j]);
    double z = 0.0;
    for (int64_t j = 0; j < C; ++j) z += std::exp(row[j] - mx);
    const double lse = mx + std::log(z);
    total += lse - row[labels[b]];
    if (grad)
      for (int64_t j = 0; j < C; ++j)
        (*grad)[b * static_cast<size_t>(C) + static_cast<size_t>(j)] =
            (std::exp(row[j] - lse) - (j == labels[b] ? 1.0 : 0.0)) * dloss /
            static_cast<double>(B);
  }
  return total / static_cast<double>(B);
}

std::vector<int64_t> some_labels(int64_t B, int64_t C) {
  std::vector<int64_t> l;
  for (int64_t b = 0; b < B; ++b) l.push_back((b * 7 + 3) % C);
  return l;
}

TEST(OpsLoss, CrossEntropyMatchesReference) {
  struct Case {
    int64_t B, C;
  };
  uint64_t seed = 500;
  for (const Case& c : {Case{1, 1}, Case{1, 10}, Case{197, 37}, Case{64, 100}, Case{3, 1000}}) {
    for (DType dt : {DType::kFloat32, DType::kFloat64}) {
      for (DType ldt : {DType::kInt32, DType::kInt64}) {
        const Tensor logits = random_tensor({c.B, c.C}, seed++, -6.0, 6.0, dt);
        const std::vector<int64_t> lv = some_labels(c.B, c.C);
        const Tensor labels = cast(Tensor::from_vector<int64_t>(lv, {c.B}), ldt);
        const Tensor loss = cross_entropy(logits, labels);
        EXPECT_EQ(loss.ndim(), 0);
        EXPECT_EQ(loss.dtype(), DType::kFloat32);
        const double want = ce_reference(host_values(logits), lv, c.C, 1.0, nullptr);
        EXPECT_NEAR(loss.item(), want, 1e-6 * std::max(1.0, std::fabs(want))) << logits.describe();
      }
    }
  }
}

TEST(OpsLoss, CrossEntropyHandValues) {
  // Uniform logits: loss = log C for every label.
  EXPECT_NEAR(
      cross_entropy(Tensor::zeros({2, 4}), Tensor::from_vector<int64_t>({0, 3}, {2})).item(),
      std::log(4.0), 1e-7);
  // [0, ln 3]: p = [1/4, 3/4]; labels 1 and 0 give ln(4/3) and ln 4.
  const Tensor logits = make({0, std::log(3.0), 0, std::log(3.0)}, {2, 2});
  EXPECT_NEAR(cross_entropy(logits, Tensor::from_vector<int32_t>({1, 0}, {2})).item(),
              0.5 * (std::log(4.0 / 3.0) + std::log(4.0)), 1e-7);
  // Large logits do not overflow: [1000, 0] with label 0 costs log(1 + e^-1000) ~ 0.
  const Tensor big = make({1000, 0, -1000, 1000}, {2, 2});
  const Tensor lb = Tensor::from_vector<int64_t>({0, 0}, {2});
  EXPECT_NEAR(cross_entropy(big, lb).item(), 0.5 * 2000.0, 1e-3);
  EXPECT_TRUE(std::isfinite(cross_entropy(big, lb).item()));
}

TEST(OpsLoss, CrossEntropyBackwardMatchesAnalyticGradient) {
  const int64_t B = 197, C = 37;
  for (DType dt : {DType::kFloat32, DType::kFloat64}) {
    const Tensor logits = random_tensor({B, C}, 510, -5.0, 5.0, dt);
    const std::vector<int64_t> lv = some_labels(B, C);
    const Tensor labels = Tensor::from_vector<int64_t>(lv, {B});
    const Tensor dloss = Tensor::from_vector<float>({2.5f}, {1});
    std::vector<double> want;
    ce_reference(host_values(logits), lv, C, 2.5, &want);
    const Tensor d = cross_entropy_backward(logits, labels, dloss);
    EXPECT_EQ(d.shape(), logits.shape());
    EXPECT_EQ(d.dtype(), dt);
    EXPECT_TRUE(all_close(d, want, dt == DType::kFloat32 ? 1e-5 : 1e-13, 1e-9, "dlogits"));
    // each row sums to zero
    EXPECT_TRUE(all_close(sum(d, 1), std::vector<double>(B, 0.0), 0, 1e-7, "row sums"));
  }
}

TEST(OpsLoss, CrossEntropyBackwardMatchesFiniteDifferences) {
  const Tensor logits = random_tensor({4, 6}, 520, -2.0, 2.0, DType::kFloat64);
  const std::vector<int64_t> lv = {5, 0, 3, 3};
  const Tensor labels = Tensor::from_vector<int64_t>(lv, {4});
  const Tensor d = cross_entropy_backward(logits, labels, Tensor::from_vector<float>({1.0f}, {1}));
  // The reference loss in double differentiates cleanly ...
  const std::vector<double> fd = numeric_grad(
      logits, [&](const Tensor& x) { return ce_reference(host_values(x), lv, 6, 1.0, nullptr); });
  EXPECT_TRUE(all_close(d, fd, 1e-7, 1e-9, "dlogits vs finite differences of the reference"));
  // ... and the library's float32 loss agrees to its precision (rounding / 2h ~ 1e-4).
  const std::vector<double> fd32 = numeric_grad(
      logits, [&](const Tensor& x) { return cross_entropy(x, labels).item(); }, 1e-3);
  EXPECT_TRUE(all_close(d, fd32, 0, 5e-4, "dlogits vs finite differences of cross_entropy"));
}

TEST(OpsLoss, BFloat16Logits) {
  const Tensor logits = random_tensor({8, 19}, 530, -4.0, 4.0, DType::kBFloat16);
  const std::vector<int64_t> lv = some_labels(8, 19);
  const Tensor labels = Tensor::from_vector<int64_t>(lv, {8});
  EXPECT_EQ(cross_entropy(logits, labels).dtype(), DType::kFloat32);
  EXPECT_NEAR(cross_entropy(logits, labels).item(),
              ce_reference(host_values(logits), lv, 19, 1.0, nullptr), 1e-5);
  std::vector<double> want;
  ce_reference(host_values(logits), lv, 19, 1.0, &want);
  const Tensor d = cross_entropy_backward(logits, labels, Tensor::from_vector<float>({1.0f}, {1}));
  EXPECT_EQ(d.dtype(), DType::kBFloat16);
  EXPECT_TRUE(all_close(d, want, 8e-3, 1e-5, "bfloat16 dlogits"));
}

TEST(OpsLoss, BadArgumentsNameTheOp) {
  const Tensor logits = Tensor::zeros({3, 4});
  const Tensor dloss = Tensor::from_vector<float>({1.0f}, {1});
  EXPECT_TRUE(throws_naming(
      [&] {
        cross_entropy(logits, Tensor::from_vector<int64_t>({0, 4, 1}, {3}));
      },
      "cross_entropy"));
  EXPECT_TRUE(throws_naming(
      [&] {
        cross_entropy(logits, Tensor::from_vector<int64_t>({0, -1, 1}, {3}));
      },
      "label -1"));
  EXPECT_TRUE(throws_naming(
      [&] {
        cross_entropy(logits, Tensor::from_vector<int64_t>({0, 1}, {2}));
      },
      "cross_entropy"));
  EXPECT_TRUE(throws_naming([&] { cross_entropy(logits, make({0, 1, 2}, {3})); }, "cross_entropy"));
  EXPECT_TRUE(throws_naming(
      [&] { cross_entropy(Tensor::zeros({12}), Tensor::from_vector<int64_t>({0}, {1})); },
      "cross_entropy"));
  EXPECT_TRUE(throws_naming(
      [&] {
        cross_entropy_backward(logits, Tensor::from_vector<int32_t>({0, 1, 9}, {3}), dloss);
      },
      "cross_entropy_backward"));
  EXPECT_TRUE(throws_naming(
      [&] {
        cross_entropy_backward(logits, Tensor::from_vector<int32_t>({0, 1, 2}, {3}),
                               Tensor::from_vector<double>({1.0}, {1}));
      },
      "dloss"));
  EXPECT_TRUE(throws_naming(
      [&] {
        cross_entropy(Tensor::zeros({3, 4}, DType::kInt32),
                      Tensor::from_vector<int64_t>({0, 1, 2}, {3}));
      },
      "cross_entropy"));
}

}  // namespace
}  // namespace sdlora::test
