// ViT patches on the CPU: patchify against a hand-checked tiny case and a naive reference,
// unpatchify as its inverse and adjoint, and the error paths.
#include "tests/tensor/ops_testing.h"

namespace sdlora::test {
namespace {

// patches[b, gh * (W / p) + gw, (c p + i) p + j] = x[b, c, gh p + i, gw p + j]
std::vector<double> patchify_reference(const Tensor& x, int64_t p) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t GH = H / p, GW = W / p, K = C * p * p;
  const std::vector<double> v = host_values(x);
  std::vector<double> out(v.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t gh = 0; gh < GH; ++gh)
      for (int64_t gw = 0; gw < GW; ++gw)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t i = 0; i < p; ++i)
            for (int64_t j = 0; j < p; ++j)
              out[static_cast<size_t>((b * GH * GW + gh * GW + gw) * K + (c * p + i) * p + j)] =
                  v[static_cast<size_t>(((b * C + c) * H + gh * p + i) * W + gw * p + j)];
  return out;
}

TEST(OpsPatch, HandCheckedTinyCase) {
  // x[0, c, h, w] = 16 c + 4 h + w, 2 channels of 4 x 4, patches of 2 x 2: a 2 x 2 grid.
  const Tensor x = cast(arange(0, 32, 1, DType::kFloat32).reshape({1, 2, 4, 4}), DType::kFloat32);
  const Tensor p = patchify(x, 2);
  ASSERT_EQ(p.shape(), (Shape{1, 4, 8}));
  EXPECT_EQ(p.to_vector<float>(), (std::vector<float>{
                                      0,  1,  4,  5,  16, 17, 20, 21,  // patch (0, 0)
                                      2,  3,  6,  7,  18, 19, 22, 23,  // patch (0, 1)
                                      8,  9,  12, 13, 24, 25, 28, 29,  // patch (1, 0)
                                      10, 11, 14, 15, 26, 27, 30, 31,  // patch (1, 1)
                                  }));
  EXPECT_EQ(unpatchify(p, 2, 4, 4, 2).to_vector<float>(), x.to_vector<float>());
  // p = 1: one pixel per patch, channels innermost; p = H = W: one patch, the whole image.
  EXPECT_EQ(patchify(x, 1).shape(), (Shape{1, 16, 2}));
  EXPECT_EQ(patchify(x, 1).to_vector<float>()[2 * 5 + 1], 16.f + 5.f);
  EXPECT_EQ(patchify(x, 4).to_vector<float>(), x.to_vector<float>());
}

TEST(OpsPatch, MatchesReferenceAndInverts) {
  struct Case {
    Shape shape;
    int64_t p;
  };
  uint64_t seed = 600;
  for (const Case& c : {Case{{2, 3, 8, 12}, 4}, Case{{1, 3, 16, 16}, 16}, Case{{3, 1, 6, 9}, 3},
                        Case{{1, 3, 28, 28}, 14}}) {
    for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kBFloat16}) {
      const Tensor x = random_tensor(c.shape, seed++, -1, 1, dt);
      const Tensor p = patchify(x, c.p);
      const int64_t H = c.shape[2], W = c.shape[3], C = c.shape[1];
      ASSERT_EQ(p.shape(), (Shape{c.shape[0], (H / c.p) * (W / c.p), C * c.p * c.p}));
      EXPECT_EQ(p.dtype(), dt);
      EXPECT_EQ(host_values(p), patchify_reference(x, c.p)) << x.describe();
      // A permutation of the elements: unpatchify undoes it exactly.
      const Tensor back = unpatchify(p, C, H, W, c.p);
      EXPECT_EQ(back.shape(), c.shape);
      EXPECT_EQ(host_values(back), host_values(x)) << x.describe();
    }
  }
}

TEST(OpsPatch, UnpatchifyIsTheAdjoint) {
  // <patchify(x), y> == <x, unpatchify(y)> for independent x and y.
  const Tensor x = random_tensor({2, 3, 12, 8}, 610, -1, 1, DType::kFloat64);
  const Tensor y = random_tensor({2, 6, 48}, 611, -1, 1, DType::kFloat64);
  EXPECT_NEAR(dot(patchify(x, 4), y), dot(x, unpatchify(y, 3, 12, 8, 4)), 1e-13);
  const Tensor x32 = random_tensor({1, 3, 32, 32}, 612), y32 = random_tensor({1, 4, 768}, 613);
  EXPECT_NEAR(dot(patchify(x32, 16), y32), dot(x32, unpatchify(y32, 3, 32, 32, 16)), 1e-9);
}

TEST(OpsPatch, BadArgumentsNameTheOp) {
  EXPECT_TRUE(throws_naming([] { patchify(Tensor::zeros({1, 3, 10, 8}), 4); }, "patchify"));
  EXPECT_TRUE(throws_naming([] { patchify(Tensor::zeros({3, 8, 8}), 4); }, "patchify"));
  EXPECT_TRUE(throws_naming([] { patchify(Tensor::zeros({1, 3, 8, 8}), 0); }, "patchify"));
  EXPECT_TRUE(throws_naming(
      [] {
        patchify(Tensor::zeros({1, 3, 8, 8}, DType::kUInt8), 4);
      },
      "patchify"));
  EXPECT_TRUE(throws_naming(
      [] {
        unpatchify(Tensor::zeros({1, 4, 48}), 3, 8, 8, 2);
      },
      "unpatchify"));
  EXPECT_TRUE(throws_naming(
      [] {
        unpatchify(Tensor::zeros({1, 4, 48}), 3, 9, 8, 4);
      },
      "unpatchify"));
  EXPECT_TRUE(throws_naming([] { unpatchify(Tensor::zeros({4, 48}), 3, 8, 8, 4); }, "unpatchify"));
}

}  // namespace
}  // namespace sdlora::test
