// LayerNorm over the last dim on the CPU: forward against a naive reference and a hand case,
// statistics, backward (dx, dw, db) against finite differences in float64 of sum(y * g).
#include <cmath>

#include "tests/tensor/ops_testing.h"

namespace sdlora::test {
namespace {

struct LayerNormRef {
  std::vector<double> y, mean, rstd;
};

LayerNormRef layernorm_reference(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  const std::vector<double> xv = host_values(x), wv = host_values(w), bv = host_values(b);
  const size_t C = wv.size(), rows = xv.size() / C;
  LayerNormRef r{std::vector<double>(xv.size()), {}, {}};
  for (size_t i = 0; i < rows; ++i) {
    double mu = 0.0, var = 0.0;
    for (size_t j = 0; j < C; ++j) mu += xv[i * C + j];
    mu /= static_cast<double>(C);
    for (size_t j = 0; j < C; ++j) var += (xv[i * C + j] - mu) * (xv[i * C + j] - mu);
    var /= static_cast<double>(C);
    const double rs = 1.0 / std::sqrt(var + eps);
    for (size_t j = 0; j < C; ++j) r.y[i * C + j] = (xv[i * C + j] - mu) * rs * wv[j] + bv[j];
    r.mean.push_back(mu);
    r.rstd.push_back(rs);
  }
  return r;
}

TEST(OpsLayerNorm, ForwardMatchesReference) {
  const std::vector<Shape> shapes = {{197, 40}, {2, 3, 65}, {1, 7}, {5, 1}, {768}};
  uint64_t seed = 300;
  for (const Shape& shape : shapes) {
    for (DType dt : {DType::kFloat32, DType::kFloat64}) {
      const int64_t C = shape.back();
      const Tensor x = add(random_tensor(shape, seed++, -2.0, 2.0, dt), 0.5);
      const Tensor w = random_tensor({C}, seed++, 0.5, 1.5, dt);
      const Tensor b = random_tensor({C}, seed++, -0.5, 0.5, dt);
      const double eps = 1e-5;
      const LayerNormRef ref = layernorm_reference(x, w, b, eps);
      const LayerNormOut out = layernorm(x, w, b, eps);
      const std::string what = "layernorm " + x.describe();
      EXPECT_EQ(out.y.shape(), shape);
      EXPECT_EQ(out.y.dtype(), dt);
      EXPECT_EQ(out.mean.dtype(), DType::kFloat32);
      EXPECT_EQ(out.rstd.shape(), (Shape{x.numel() / C}));
      const double tol = dt == DType::kFloat32 ? 2e-6 : 1e-13;
      EXPECT_TRUE(all_close(out.y, ref.y, tol, tol, what + " y"));
      // statistics are float32 for every input dtype
      EXPECT_TRUE(all_close(out.mean, ref.mean, 1e-7, 1e-7, what + " mean"));
      EXPECT_TRUE(all_close(out.rstd, ref.rstd, 1e-6, 0, what + " rstd"));
    }
  }
}

TEST(OpsLayerNorm, HandCase) {
  // x = [1, 2, 3, 4]: mean 2.5, biased variance 1.25; eps 0.
  const Tensor x = make({1, 2, 3, 4, 10, 10, 10, 10}, {2, 4}, DType::kFloat64);
  const Tensor w = make({1, 2, 1, 1}, {4}, DType::kFloat64),
               b = make({0, 0, 1, 0}, {4}, DType::kFloat64);
  const LayerNormOut out = layernorm(x, w, b, 0.0);
  const double s = 1.0 / std::sqrt(1.25);
  EXPECT_TRUE(all_close(out.y.narrow(0, 1), {-1.5 * s, 2 * -0.5 * s, 0.5 * s + 1, 1.5 * s}, 1e-15,
                        1e-15, "y row 0"));
  EXPECT_TRUE(all_close(out.mean, {2.5, 10.0}, 0, 0, "mean"));
  // A constant row normalises to 0, then + b; with eps 1e-6 its rstd is 1000.
  const LayerNormOut out2 = layernorm(x, w, b, 1e-6);
  EXPECT_TRUE(all_close(out2.y.narrow(1, 1), {0, 0, 1, 0}, 0, 0, "constant row"));
  EXPECT_TRUE(all_close(out2.rstd.narrow(1, 1), {1000.0}, 1e-7, 0, "rstd of a constant row"));
}

TEST(OpsLayerNorm, Float32WeightsWithFloat64Input) {
  const Tensor x = random_tensor({6, 19}, 310, -1, 1, DType::kFloat64);
  const Tensor w = random_tensor({19}, 311, 0.5, 1.5), b = random_tensor({19}, 312, -0.5, 0.5);
  const LayerNormOut out = layernorm(x, w, b, 1e-6);
  EXPECT_EQ(out.y.dtype(), DType::kFloat64);
  EXPECT_TRUE(all_close(out.y, layernorm_reference(x, w, b, 1e-6).y, 1e-13, 1e-13, "mixed y"));
  const Tensor dy = random_tensor({6, 19}, 313, -1, 1, DType::kFloat64);
  const LayerNormGrads g = layernorm_backward(dy, x, w, out.mean, out.rstd);
  EXPECT_EQ(g.dx.dtype(), DType::kFloat64);
  EXPECT_EQ(g.dw.dtype(), DType::kFloat32);
  EXPECT_EQ(g.db.dtype(), DType::kFloat32);
}

TEST(OpsLayerNorm, BackwardMatchesFiniteDifferences) {
  const double eps = 1e-5;
  for (const Shape& shape : {Shape{3, 11}, Shape{2, 2, 7}, Shape{1, 5}}) {
    const int64_t C = shape.back();
    const Tensor x = random_tensor(shape, 320, -2.0, 2.0, DType::kFloat64);
    const Tensor w = random_tensor({C}, 321, 0.5, 1.5, DType::kFloat64);
    const Tensor b = random_tensor({C}, 322, -0.5, 0.5, DType::kFloat64);
    const Tensor g = random_tensor(shape, 323, -1.0, 1.0, DType::kFloat64);
    // The scalar L = sum(layernorm(x, w, b) * g); dL/dy = g.
    auto loss = [&](const Tensor& xx, const Tensor& ww, const Tensor& bb) {
      return dot(layernorm(xx, ww, bb, eps).y, g);
    };
    const std::vector<double> fdx = numeric_grad(x, [&](const Tensor& t) { return loss(t, w, b); });
    const std::vector<double> fdw = numeric_grad(w, [&](const Tensor& t) { return loss(x, t, b); });
    const std::vector<double> fdb = numeric_grad(b, [&](const Tensor& t) { return loss(x, w, t); });
    const LayerNormOut out = layernorm(x, w, b, eps);
    const LayerNormGrads grads = layernorm_backward(g, x, w, out.mean, out.rstd);
    // The backward reads the float32 statistics, so it agrees to float32 precision.
    EXPECT_TRUE(all_close(grads.dx, fdx, 1e-5, 1e-6, "dx " + shape_str(shape)));
    EXPECT_TRUE(all_close(grads.dw, fdw, 1e-5, 1e-6, "dw " + shape_str(shape)));
    EXPECT_TRUE(all_close(grads.db, fdb, 1e-8, 1e-8, "db " + shape_str(shape)));
  }
}

TEST(OpsLayerNorm, BackwardFloat32AwkwardShape) {
  const Tensor x = random_tensor({2, 197, 40}, 330, -2.0, 2.0);
  const Tensor w = random_tensor({40}, 331, 0.5, 1.5), b = random_tensor({40}, 332, -0.5, 0.5);
  const Tensor dy = random_tensor({2, 197, 40}, 333, -1.0, 1.0);
  const LayerNormOut out = layernorm(x, w, b, 1e-6);
  const LayerNormGrads g = layernorm_backward(dy, x, w, out.mean, out.rstd);
  // Reference: the same formulas in float64 on the same statistics.
  const Tensor xd = cast(x, DType::kFloat64), dyd = cast(dy, DType::kFloat64);
  const LayerNormGrads gd =
      layernorm_backward(dyd, xd, cast(w, DType::kFloat64), out.mean, out.rstd);
  EXPECT_TRUE(all_close(g.dx, gd.dx, 1e-5, 1e-6, "dx float32"));
  EXPECT_TRUE(all_close(g.dw, gd.dw, 1e-5, 1e-5, "dw float32"));
  EXPECT_TRUE(all_close(g.db, gd.db, 1e-5, 1e-5, "db float32"));
  // db is the sum of dy over rows, written out.
  EXPECT_TRUE(all_close(g.db, sum(dyd.reshape({2 * 197, 40}), 0), 1e-6, 1e-6, "db = sum dy"));
}

TEST(OpsLayerNorm, BFloat16) {
  const Tensor x = random_tensor({7, 48}, 340, -2.0, 2.0, DType::kBFloat16);
  const Tensor w = random_tensor({48}, 341, 0.5, 1.5, DType::kBFloat16);
  const Tensor b = random_tensor({48}, 342, -0.5, 0.5, DType::kBFloat16);
  const LayerNormOut out = layernorm(x, w, b, 1e-6);
  EXPECT_EQ(out.y.dtype(), DType::kBFloat16);
  EXPECT_TRUE(all_close(out.y, layernorm_reference(x, w, b, 1e-6).y, 1e-2, 1e-2, "bfloat16 y"));
  const Tensor dy = random_tensor({7, 48}, 343, -1.0, 1.0, DType::kBFloat16);
  const LayerNormGrads g = layernorm_backward(dy, x, w, out.mean, out.rstd);
  const LayerNormGrads gd = layernorm_backward(cast(dy, DType::kFloat64), cast(x, DType::kFloat64),
                                               cast(w, DType::kFloat64), out.mean, out.rstd);
  EXPECT_EQ(g.dw.dtype(), DType::kBFloat16);
  EXPECT_TRUE(all_close(g.dx, gd.dx, 2e-2, 2e-2, "bfloat16 dx"));
  EXPECT_TRUE(all_close(g.dw, gd.dw, 2e-2, 2e-2, "bfloat16 dw"));
  EXPECT_TRUE(all_close(g.db, gd.db, 2e-2, 2e-2, "bfloat16 db"));
}

TEST(OpsLayerNorm, BadArgumentsNameTheOp) {
  const Tensor x = Tensor::zeros({4, 8}), w = Tensor::full({8}, 1.0), b = Tensor::zeros({8});
  EXPECT_TRUE(throws_naming([&] { layernorm(x, Tensor::zeros({7}), b, 1e-5); }, "layernorm"));
  EXPECT_TRUE(throws_naming([&] { layernorm(x, w, Tensor::zeros({4}), 1e-5); }, "bias"));
  EXPECT_TRUE(throws_naming([&] { layernorm(x, w, Tensor(), 1e-5); }, "layernorm"));
  EXPECT_TRUE(
      throws_naming([&] { layernorm(x, Tensor::zeros({8}, DType::kFloat64), b, 1e-5); }, "weight"));
  EXPECT_TRUE(throws_naming([&] { layernorm(cast(x, DType::kInt32), w, b, 1e-5); }, "layernorm"));
  const LayerNormOut out = layernorm(x, w, b, 1e-5);
  EXPECT_TRUE(throws_naming(
      [&] {
        layernorm_backward(Tensor::zeros({4, 7}), x, w, out.mean, out.rstd);
      },
      "layernorm_backward"));
  EXPECT_TRUE(throws_naming([&] { layernorm_backward(x, x, w, out.mean, Tensor::zeros({3})); },
                            "layernorm_backward"));
  EXPECT_TRUE(
      throws_naming([&] { layernorm_backward(x, x, w, cast(out.mean, DType::kFloat64), out.rstd); },
                    "statistics"));
}

}  // namespace
}  // namespace sdlora::test
