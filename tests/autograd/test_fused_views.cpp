// The strided-view nodes: attention read in place from the qkv output and the low-rank updates
// accumulated into column windows of a product's output, against central finite differences in
// float64 and against the unfused composition (slices, permutes, separate adds) in float32.
#include <gtest/gtest.h>

#include "autograd/autograd.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora::test {
namespace {

Tensor f64(const Shape& s, uint64_t seed) {
  return random_tensor(s, seed, -1.0, 1.0, DType::kFloat64);
}

// The composition the ViT used before: slice q, k, v, split heads by permute, attention, merge.
Var unfused_attention(const Var& qkv, int64_t H) {
  const int64_t B = qkv.size(0), N = qkv.size(1), C = qkv.size(2) / 3, hd = C / H;
  auto heads = [&](int64_t p) {
    return permute(reshape(slice(qkv, 2, p * C, (p + 1) * C), {B, N, H, hd}), {0, 2, 1, 3});
  };
  return reshape(permute(attention(heads(0), heads(1), heads(2)), {0, 2, 1, 3}), {B, N, C});
}

TEST(AttentionQkv, MatchesFiniteDifferences) {
  const GradcheckResult r = gradcheck(
      [](const std::vector<Var>& v) { return attention_qkv(v[0], 2); }, {f64({2, 3, 12}, 1)});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(AttentionQkv, MatchesTheUnfusedComposition) {
  for (DType dt : {DType::kFloat32, DType::kBFloat16}) {
    const int64_t B = 2, N = 7, H = 3, hd = 4;
    const Tensor X = random_tensor({B, N, 3 * H * hd}, 2, -2.0, 2.0, dt);
    const Tensor Wt = random_tensor({B, N, H * hd}, 3, -1.0, 1.0, dt);
    auto run = [&](bool fused, Tensor& grad) {
      Var x(X.clone(), true);
      Var y = fused ? attention_qkv(x, H) : unfused_attention(x, H);
      backward(sum(mul(y, Var(Wt))));
      grad = x.grad();
      return y.data();
    };
    Tensor gf, gu;
    const Tensor yf = run(true, gf), yu = run(false, gu);
    const double tol = dt == DType::kBFloat16 ? 2e-2 : 1e-5;
    EXPECT_TRUE(all_close(yf, yu, tol, tol, "output"));
    EXPECT_TRUE(all_close(gf, gu, tol, tol, "dqkv"));
  }
}

TEST(AttentionQkv, BadShapesAreErrors) {
  const std::string e = error_of([] { attention_qkv(Var(Tensor::zeros({2, 3, 10})), 2); });
  EXPECT_NE(e.find("attention_qkv"), std::string::npos) << e;
}

// y's q and v column windows (of three) updated from one t holding both parts' factors.
TEST(LowRankColumns, MatchesFiniteDifferences) {
  const GradcheckResult r = gradcheck(
      [](const std::vector<Var>& v) {
        // y is an intermediate (the op writes in place), as the qkv output is
        return add_lowrank_columns_(mul(v[0], 1.0), v[1], {{0, 0, v[2]}, {8, 2, v[3]}});
      },
      {f64({2, 3, 12}, 4), f64({2, 3, 5}, 5), f64({4, 2}, 6), f64({4, 3}, 7)});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(LowRankColumns, MatchesTheUnfusedCompositionAndWritesInPlace) {
  const Tensor Y = random_tensor({2, 5, 12}, 8), T = random_tensor({2, 5, 4}, 9),
               U1 = random_tensor({4, 1}, 10), U2 = random_tensor({4, 2}, 11),
               Wt = random_tensor({2, 5, 12}, 12);
  auto run = [&](bool fused) {
    Var y(Y.clone(), true), t(T.clone(), true), u1(U1.clone(), true), u2(U2.clone(), true);
    Var base = mul(y, 1.0);
    Var out;
    if (fused) {
      out = add_lowrank_columns_(base, t, {{0, 0, u1}, {8, 2, u2}});  // t column 1 unused
      EXPECT_EQ(out.data().storage(), base.data().storage());
    } else {
      const Var q = add(slice(base, 2, 0, 4), matmul(slice(t, 2, 0, 1), u1, false, true));
      const Var v = add(slice(base, 2, 8, 12), matmul(slice(t, 2, 2, 4), u2, false, true));
      out = cat({q, slice(base, 2, 4, 8), v}, 2);
    }
    backward(sum(mul(out, Var(Wt))));
    return std::vector<Tensor>{out.data(), y.grad(), t.grad(), u1.grad(), u2.grad()};
  };
  const std::vector<Tensor> f = run(true), u = run(false);
  const char* names[] = {"output", "dy", "dt", "du1", "du2"};
  for (size_t i = 0; i < f.size(); ++i) EXPECT_TRUE(all_close(f[i], u[i], 1e-5, 1e-5, names[i]));
}

TEST(LowRankColumns, BadPartsAreErrors) {
  const Var y(Tensor::zeros({3, 6})), t(Tensor::zeros({3, 2}));
  const Var u(Tensor::zeros({4, 2}));
  EXPECT_NE(error_of([&] {
              add_lowrank_columns_(y, t, {{4, 0, u}});
            }).find("does not fit"),
            std::string::npos);
  const Var u1(Tensor::zeros({2, 2}));
  EXPECT_NE(error_of([&] {
              add_lowrank_columns_(y, t, {{0, 0, u1}, {2, 0, u1}});
            }).find("reads t columns"),
            std::string::npos);
}

}  // namespace
}  // namespace sdlora::test
