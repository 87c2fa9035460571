// The fused linear ops on the CPU against the unfused composition (matmul, add, gelu,
// gelu_backward, sum) and against naive loops: bit-identical where the order of operations is
// the same, within float rounding where the residual joins the product first.
#include <gtest/gtest.h>

#include <cmath>

#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora::test {
namespace {

// Small integers make every product and sum exact in float32, so order does not matter.
Tensor ints(const Shape& shape, uint64_t seed, DType dtype = DType::kFloat32) {
  return cast(cast(random_tensor(shape, seed, -3.0, 3.0), DType::kInt64), dtype);
}

TEST(FusedLinear, BiasEpilogueIsBitIdenticalToMatmulThenAdd) {
  const Tensor x = random_tensor({2, 5, 7}, 1), w = random_tensor({3, 7}, 2),
               b = random_tensor({3}, 3);
  const Tensor want = add(matmul(x, w, false, true), b);
  const Tensor got = linear(x, w, b);
  ASSERT_EQ(got.shape(), (Shape{2, 5, 3}));
  EXPECT_TRUE(all_close(got, want, 0.0, 0.0, "linear"));
  EXPECT_TRUE(all_close(linear(x, w, Tensor()), matmul(x, w, false, true), 0.0, 0.0, "no bias"));
}

TEST(FusedLinear, ResidualIsTheProductsCInput) {
  const Tensor x = random_tensor({4, 6}, 4), w = random_tensor({5, 6}, 5),
               b = random_tensor({5}, 6), r = random_tensor({4, 5}, 7);
  // The fused order: (x w^T + r) + b; the unfused r + (x w^T + b) agrees to float rounding.
  const Tensor got = linear(x, w, b, r);
  EXPECT_TRUE(all_close(got, add(r, add(matmul(x, w, false, true), b)), 1e-6, 1e-6, "residual"));
  // With small integers every order is exact: the value itself, element by element.
  const Tensor xi = ints({4, 6}, 8), wi = ints({5, 6}, 9), bi = ints({5}, 10),
               ri = ints({4, 5}, 11);
  const Tensor yi = linear(xi, wi, bi, ri);
  const std::vector<double> X = host_values(xi), W = host_values(wi), B = host_values(bi),
                            R = host_values(ri);
  std::vector<double> want(20);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 5; ++j) {
      double acc = R[static_cast<size_t>(i * 5 + j)] + B[static_cast<size_t>(j)];
      for (int k = 0; k < 6; ++k)
        acc += X[static_cast<size_t>(i * 6 + k)] * W[static_cast<size_t>(j * 6 + k)];
      want[static_cast<size_t>(i * 5 + j)] = acc;
    }
  EXPECT_TRUE(all_close(yi, want, 0.0, 0.0, "integer residual"));
}

TEST(FusedLinear, GeluKeepsThePreActivation) {
  const Tensor x = random_tensor({3, 4, 8}, 12), w = random_tensor({6, 8}, 13),
               b = random_tensor({6}, 14);
  const LinearGeluOut r = linear_gelu(x, w, b);
  const Tensor pre = add(matmul(x, w, false, true), b);
  EXPECT_TRUE(all_close(r.pre, pre, 0.0, 0.0, "pre"));
  EXPECT_TRUE(all_close(r.y, gelu(pre), 0.0, 0.0, "y"));
}

TEST(FusedLinear, BackwardMatchesTheProductsItReplaces) {
  const Tensor x = random_tensor({2, 5, 7}, 15), w = random_tensor({3, 7}, 16),
               dy = random_tensor({2, 5, 3}, 17);
  LinearGradRequest all;
  all.dx = all.dw = all.db = true;
  const LinearGrads g = linear_backward(dy, x, w, all);
  EXPECT_TRUE(all_close(g.dx, matmul(dy, w), 0.0, 0.0, "dx"));
  EXPECT_TRUE(
      all_close(g.dw, matmul(dy.flatten_to_2d(), x.flatten_to_2d(), true, false), 0.0, 0.0, "dw"));
  EXPECT_TRUE(all_close(g.db, sum(dy.flatten_to_2d(), 0), 1e-6, 1e-6, "db"));
  // Frozen weight: no dw (and x is not needed); db from dy alone.
  LinearGradRequest frozen;
  frozen.dx = frozen.db = true;
  const LinearGrads f = linear_backward(dy, Tensor(), w, frozen);
  EXPECT_FALSE(f.dw.defined());
  EXPECT_TRUE(all_close(f.db, g.db, 1e-6, 1e-6, "db without dw"));
  EXPECT_TRUE(all_close(f.dx, g.dx, 0.0, 0.0, "dx without dw"));
}

TEST(FusedLinear, BiasGradientOfAWeightGradientProductInFloat64) {
  // Exact double sums of small integers: the bias gradient read in the dw product is the sum.
  const Tensor x = ints({9, 4}, 18, DType::kFloat64), dy = ints({9, 5}, 19, DType::kFloat64);
  LinearGradRequest q;
  q.dw = q.db = true;
  q.dw_dtype = q.db_dtype = DType::kFloat64;
  const LinearGrads g = linear_backward(dy, x, Tensor(), q);
  const std::vector<double> D = host_values(dy);
  std::vector<double> want(5, 0.0);
  for (size_t r = 0; r < 9; ++r)
    for (size_t j = 0; j < 5; ++j) want[j] += D[r * 5 + j];
  EXPECT_TRUE(all_close(g.db, want, 0.0, 0.0, "db"));
  EXPECT_EQ(g.db.dtype(), DType::kFloat64);
}

TEST(FusedLinear, GeluBackwardWithBiasGradient) {
  const Tensor pre = random_tensor({6, 11}, 20, -3.0, 3.0), dy = random_tensor({6, 11}, 21);
  const GeluBgradOut r = gelu_backward_bgrad(pre, dy, DType::kFloat32);
  const Tensor dx = gelu_backward(pre, dy);
  EXPECT_TRUE(all_close(r.dx, dx, 0.0, 0.0, "dx"));  // the same expression, bit for bit
  EXPECT_TRUE(all_close(r.db, sum(dx, 0), 1e-6, 1e-6, "db"));
}

TEST(FusedLinear, Bfloat16MatchesTheFloat32Reference) {
  const Tensor x = random_tensor({4, 16}, 22), w = random_tensor({8, 16}, 23),
               b = random_tensor({8}, 24), r = random_tensor({4, 8}, 25);
  const DType h = DType::kBFloat16;
  const Tensor y = linear(cast(x, h), cast(w, h), b, cast(r, h));  // float32 bias into bfloat16
  EXPECT_EQ(y.dtype(), h);
  EXPECT_TRUE(rel_close(y,
                        linear(cast(cast(x, h), DType::kFloat32), cast(cast(w, h), DType::kFloat32),
                               b, cast(cast(r, h), DType::kFloat32)),
                        1e-2, "bf16 linear"));
  const GeluBgradOut g = gelu_backward_bgrad(cast(x, h), cast(x, h), DType::kFloat32);
  EXPECT_EQ(g.dx.dtype(), h);
  EXPECT_EQ(g.db.dtype(), DType::kFloat32);
  // db sums dx as stored in bfloat16.
  EXPECT_TRUE(all_close(g.db, sum(cast(g.dx, DType::kFloat32), 0), 1e-6, 1e-6, "bf16 db"));
}

TEST(FusedLinear, BadInputsNameTheTensor) {
  const Tensor x = random_tensor({2, 3}, 26), w = random_tensor({4, 3}, 27);
  EXPECT_NE(error_of([&] {
              linear(x, random_tensor({4, 5}, 1), Tensor());
            }).find("weight"),
            std::string::npos);
  EXPECT_NE(error_of([&] { linear(x, w, random_tensor({3}, 1)); }).find("bias"), std::string::npos);
  EXPECT_NE(error_of([&] {
              linear(x, w, Tensor(), random_tensor({2, 3}, 1));
            }).find("residual"),
            std::string::npos);
  EXPECT_NE(error_of([&] { gelu_backward_bgrad(x, w, DType::kFloat32); }).find("share one shape"),
            std::string::npos);
}

}  // namespace
}  // namespace sdlora::test
