// The fused linear nodes (linear with bias and residual, linear + GELU): central finite
// differences in float64, gradients against the unfused composition of primitive nodes, and
// frozen weights that get no gradient.
#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora::test {
namespace {

Tensor f64(const Shape& s, uint64_t seed) {
  return random_tensor(s, seed, -1.0, 1.0, DType::kFloat64);
}

TEST(FusedLinearGrad, ResidualLinearMatchesFiniteDifferences) {
  const GradcheckResult r =
      gradcheck([](const std::vector<Var>& v) { return linear(v[0], v[1], v[2], v[3]); },
                {f64({2, 3, 4}, 1), f64({5, 4}, 2), f64({5}, 3), f64({2, 3, 5}, 4)});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(FusedLinearGrad, LinearGeluMatchesFiniteDifferences) {
  const GradcheckResult r =
      gradcheck([](const std::vector<Var>& v) { return linear_gelu(v[0], v[1], v[2]); },
                {f64({3, 4}, 5), f64({6, 4}, 6), f64({6}, 7)});
  EXPECT_TRUE(r.ok) << r.message;
  const GradcheckResult nb =
      gradcheck([](const std::vector<Var>& v) { return linear_gelu(v[0], v[1]); },
                {f64({3, 4}, 8), f64({2, 4}, 9)});
  EXPECT_TRUE(nb.ok) << nb.message;
}

// The MLP with its residual, fused and unfused, in float32: same loss, same gradients.
TEST(FusedLinearGrad, MlpMatchesTheUnfusedComposition) {
  const Tensor X = random_tensor({2, 7, 8}, 10), W1 = random_tensor({16, 8}, 11),
               B1 = random_tensor({16}, 12), W2 = random_tensor({8, 16}, 13),
               B2 = random_tensor({8}, 14), R = random_tensor({2, 7, 8}, 15);
  struct Grads {
    Tensor loss, x, w1, b1, w2, b2, r;
  };
  auto run = [&](bool fused) {
    Var x(X, true), w1(W1, true), b1(B1, true), w2(W2, true), b2(B2, true), r(R, true);
    Var y =
        fused ? linear(linear_gelu(x, w1, b1), w2, b2, r)
              : add(r, add(matmul(gelu(add(matmul(x, w1, false, true), b1)), w2, false, true), b2));
    Var loss = sum(mul(y, y));
    backward(loss);
    return Grads{loss.data(), x.grad(), w1.grad(), b1.grad(), w2.grad(), b2.grad(), r.grad()};
  };
  const Grads f = run(true), u = run(false);
  EXPECT_TRUE(all_close(f.loss, u.loss, 1e-5, 1e-5, "loss"));
  EXPECT_TRUE(all_close(f.x, u.x, 1e-5, 1e-5, "dx"));
  EXPECT_TRUE(all_close(f.w1, u.w1, 1e-5, 1e-5, "dw1"));
  EXPECT_TRUE(all_close(f.b1, u.b1, 1e-5, 1e-5, "db1"));
  EXPECT_TRUE(all_close(f.w2, u.w2, 1e-5, 1e-5, "dw2"));
  EXPECT_TRUE(all_close(f.b2, u.b2, 1e-5, 1e-5, "db2"));
  EXPECT_TRUE(all_close(f.r, u.r, 1e-5, 1e-5, "dresidual"));
}

// Frozen weight and bias: only the input's gradient is computed, and it is unchanged.
TEST(FusedLinearGrad, FrozenWeightsGetNoGradient) {
  const Tensor X = random_tensor({5, 4}, 16), W = random_tensor({3, 4}, 17),
               B = random_tensor({3}, 18);
  Var x(X, true), w(W, false), b(B, false);
  backward(sum(linear_gelu(x, w, b)));
  EXPECT_FALSE(w.grad().defined());
  EXPECT_FALSE(b.grad().defined());
  Var x2(X, true), w2(W, true), b2(B, true);
  backward(sum(linear_gelu(x2, w2, b2)));
  EXPECT_TRUE(all_close(x.grad(), x2.grad(), 0.0, 0.0, "dx frozen vs trainable"));
}

// A frozen LayerNorm's node computes dx alone; it matches the trainable one's dx.
TEST(FusedLinearGrad, FrozenLayerNormGivesTheSameInputGradient) {
  const Tensor X = random_tensor({3, 9}, 24), W = random_tensor({9}, 25, 0.5, 1.5),
               B = random_tensor({9}, 26);
  Var x(X, true), w(W, false), b(B, false), x2(X, true), w2(W, true), b2(B, true);
  const Tensor R = random_tensor({3, 9}, 27);
  backward(sum(mul(layernorm(x, w, b, 1e-6), Var(R))));
  backward(sum(mul(layernorm(x2, w2, b2, 1e-6), Var(R))));
  EXPECT_FALSE(w.grad().defined());
  EXPECT_TRUE(all_close(x.grad(), x2.grad(), 1e-6, 1e-6, "dx frozen vs trainable"));
}

// A pre-norm residual block, y = x + W gelu(LN(x)) with a frozen LayerNorm: the engine folds the
// residual's gradient into the LayerNorm's dx (Node::folds). The input gradient matches finite
// differences (float64) and the trainable LayerNorm's unfolded one, whichever consumer the
// engine reaches first.
TEST(FusedLinearGrad, FrozenLayerNormFoldsTheResidualGradient) {
  const Tensor W = random_tensor({6, 6}, 28, -0.5, 0.5, DType::kFloat64),
               G = random_tensor({6}, 29, 0.5, 1.5, DType::kFloat64),
               B = random_tensor({6}, 30, -0.5, 0.5, DType::kFloat64),
               R = random_tensor({2, 3, 6}, 31, -1, 1, DType::kFloat64);
  for (bool residual_first : {false, true}) {
    auto block = [&](const Var& x, bool frozen) {
      const Var ln = layernorm(x, Var(G, !frozen), Var(B, !frozen), 1e-6);
      const Var f = linear(gelu(ln), Var(W));
      return residual_first ? add(x, f) : add(f, x);
    };
    const GradcheckResult r =
        gradcheck([&](const std::vector<Var>& v) { return sum(mul(block(v[0], true), Var(R))); },
                  {random_tensor({2, 3, 6}, 32, -2, 2, DType::kFloat64)});
    EXPECT_TRUE(r.ok) << r.message;
    const Tensor X = random_tensor({2, 3, 6}, 33, -2, 2, DType::kFloat64);
    Var a(X, true), b(X, true);
    backward(sum(mul(block(a, true), Var(R))));
    backward(sum(mul(block(b, false), Var(R))));
    EXPECT_TRUE(all_close(a.grad(), b.grad(), 1e-12, 1e-12, "folded vs unfolded dx"));
  }
}

// bfloat16 weights with a float32 input: each gradient in its input's own dtype.
TEST(FusedLinearGrad, MixedPrecisionGradientsKeepTheirDtypes) {
  const DType h = DType::kBFloat16;
  Var x(random_tensor({4, 8}, 19), true), w(cast(random_tensor({6, 8}, 20), h), true),
      b(random_tensor({6}, 21), true), r(cast(random_tensor({4, 6}, 22), h), true);
  Var y = linear(linear_gelu(x, w, b), Var(cast(random_tensor({6, 6}, 23), h)), Var(), r);
  EXPECT_EQ(y.dtype(), h);
  backward(sum(cast(y, DType::kFloat32)));
  EXPECT_EQ(x.grad().dtype(), DType::kFloat32);
  EXPECT_EQ(w.grad().dtype(), h);
  EXPECT_EQ(b.grad().dtype(), DType::kFloat32);
  EXPECT_EQ(r.grad().dtype(), h);
}

}  // namespace
}  // namespace sdlora::test
