// Creation ops on the CPU: fill_, arange, cast between dtypes (bfloat16 rounding, integer
// truncation) and the Philox uniform / normal draws against tensor/random.h.
#include <cmath>
#include <cstring>

#include "tensor/random.h"
#include "tests/tensor/ops_testing.h"

namespace sdlora::test {
namespace {

uint16_t bits_of(float f) { return BFloat16(f).bits; }

TEST(OpsCreation, FillEveryDtype) {
  Tensor f = Tensor::empty({3, 5}, DType::kFloat32);
  fill_(f, -1.25);
  EXPECT_EQ(f.to_vector<float>(), std::vector<float>(15, -1.25f));
  Tensor d = Tensor::empty({7}, DType::kFloat64);
  fill_(d, 0.1);
  EXPECT_EQ(d.to_vector<double>(), std::vector<double>(7, 0.1));
  Tensor i32 = Tensor::empty({4}, DType::kInt32);
  fill_(i32, -7.0);
  EXPECT_EQ(i32.to_vector<int32_t>(), std::vector<int32_t>(4, -7));
  Tensor i64 = Tensor::empty({2, 2}, DType::kInt64);
  fill_(i64, 1099511627776.0);  // 2^40
  EXPECT_EQ(i64.to_vector<int64_t>(), std::vector<int64_t>(4, int64_t{1} << 40));
  Tensor u8 = Tensor::empty({3}, DType::kUInt8);
  fill_(u8, 200.0);
  EXPECT_EQ(u8.to_vector<uint8_t>(), std::vector<uint8_t>(3, 200));
  Tensor bf = Tensor::empty({5}, DType::kBFloat16);
  fill_(bf, 1.0 + 3.0 / 256);  // rounds to nearest even: 1 + 1/64
  for (BFloat16 v : bf.to_vector<BFloat16>()) EXPECT_EQ(static_cast<float>(v), 1.0f + 1.0f / 64);
  Tensor empty = Tensor::empty({0, 3}, DType::kFloat32);
  fill_(empty, 1.0);  // no elements, no error
  EXPECT_EQ(empty.numel(), 0);
}

TEST(OpsCreation, ArangeFollowsStartAndStep) {
  EXPECT_EQ(arange(0, 5).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(0, 1, 0.25, DType::kFloat32).to_vector<float>(),
            (std::vector<float>{0.f, 0.25f, 0.5f, 0.75f}));
  EXPECT_EQ(arange(5, 0, -2, DType::kInt32).to_vector<int32_t>(), (std::vector<int32_t>{5, 3, 1}));
  EXPECT_EQ(arange(-1.5, 1.0, 1.0, DType::kFloat64).to_vector<double>(),
            (std::vector<double>{-1.5, -0.5, 0.5}));
  EXPECT_EQ(arange(3, 3).numel(), 0);
  EXPECT_EQ(arange(3, 1).numel(), 0);
  const Tensor bf = arange(0, 300, 1, DType::kBFloat16);
  ASSERT_EQ(bf.numel(), 300);
  const std::vector<BFloat16> v = bf.to_vector<BFloat16>();
  for (int i = 0; i < 300; ++i)
    EXPECT_EQ(v[static_cast<size_t>(i)].bits, bits_of(static_cast<float>(i)));
  EXPECT_TRUE(throws_naming([] { arange(0, 1, 0); }, "arange"));
}

TEST(OpsCreation, CastToBFloat16RoundsToNearestEven) {
  // Exact halfway cases go to the even mantissa; others to the nearest; NaN stays NaN.
  const std::vector<float> in = {1.0f + 1.0f / 256,
                                 1.0f + 3.0f / 256,
                                 -(1.0f + 5.0f / 256),
                                 1.0f + 1.0f / 512,
                                 1.0f + 3.0f / 512,
                                 3.14159265f,
                                 65504.0f,
                                 1e-30f,
                                 -0.0f,
                                 std::nanf(""),
                                 INFINITY,
                                 -INFINITY};
  const std::vector<float> want = {1.0f, 1.0f + 1.0f / 64, -(1.0f + 1.0f / 64), 1.0f,
                                   1.0f + 1.0f / 128};
  const Tensor bf =
      cast(Tensor::from_vector<float>(in, {static_cast<int64_t>(in.size())}), DType::kBFloat16);
  ASSERT_EQ(bf.dtype(), DType::kBFloat16);
  const std::vector<BFloat16> got = bf.to_vector<BFloat16>();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(static_cast<float>(got[i]), want[i]) << i;
  EXPECT_EQ(got[5].bits, 0x4049);  // pi: 0x40490FDB rounds down
  EXPECT_EQ(got[6].bits, 0x4780);  // 65504 = 0x477FE000 rounds up to 65536
  EXPECT_EQ(got[8].bits, 0x8000);  // -0 keeps its sign
  EXPECT_TRUE(std::isnan(static_cast<float>(got[9])));
  EXPECT_EQ(got[10].bits, 0x7f80);
  EXPECT_EQ(got[11].bits, 0xff80);
  // Every float maps to the bits the host type produces.
  const Tensor r = random_tensor({1000}, 3, -50.0, 50.0);
  const std::vector<float> rv = r.to_vector<float>();
  const std::vector<BFloat16> rb = cast(r, DType::kBFloat16).to_vector<BFloat16>();
  for (size_t i = 0; i < rv.size(); ++i) ASSERT_EQ(rb[i].bits, bits_of(rv[i])) << rv[i];
  // and back to float32 exactly
  const std::vector<float> back =
      cast(cast(r, DType::kBFloat16), DType::kFloat32).to_vector<float>();
  for (size_t i = 0; i < rv.size(); ++i) ASSERT_EQ(back[i], static_cast<float>(rb[i]));
}

TEST(OpsCreation, CastBetweenFloatsAndIntegers) {
  const Tensor f = Tensor::from_vector<float>({2.7f, -2.7f, 0.5f, -0.5f, 100.0f, 0.0f}, {6});
  EXPECT_EQ(cast(f, DType::kInt32).to_vector<int32_t>(),
            (std::vector<int32_t>{2, -2, 0, 0, 100, 0}));
  EXPECT_EQ(cast(f, DType::kInt64).to_vector<int64_t>(),
            (std::vector<int64_t>{2, -2, 0, 0, 100, 0}));
  const Tensor pos = Tensor::from_vector<double>({0.0, 1.9, 254.99, 255.0}, {4});
  EXPECT_EQ(cast(pos, DType::kUInt8).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 1, 254, 255}));
  const Tensor u8 = Tensor::from_vector<uint8_t>({0, 7, 255}, {3});
  EXPECT_EQ(cast(u8, DType::kFloat32).to_vector<float>(), (std::vector<float>{0.f, 7.f, 255.f}));
  EXPECT_EQ(cast(u8, DType::kInt64).to_vector<int64_t>(), (std::vector<int64_t>{0, 7, 255}));
  const int64_t big = (int64_t{1} << 40) + 3;
  const Tensor i64 = Tensor::from_vector<int64_t>({big, -big, -1}, {3});
  EXPECT_EQ(cast(i64, DType::kFloat64).to_vector<double>(),
            (std::vector<double>{static_cast<double>(big), -static_cast<double>(big), -1.0}));
  EXPECT_EQ(cast(i64, DType::kFloat32).to_vector<float>(),
            (std::vector<float>{static_cast<float>(big), -static_cast<float>(big), -1.f}));
  EXPECT_EQ(cast(Tensor::from_vector<int32_t>({-5, 9}, {2}), DType::kInt64).to_vector<int64_t>(),
            (std::vector<int64_t>{-5, 9}));
  EXPECT_EQ(cast(Tensor::from_vector<int64_t>({-5, 9}, {2}), DType::kInt32).to_vector<int32_t>(),
            (std::vector<int32_t>{-5, 9}));
  // int -> bfloat16: exact for small integers, rounded for large ones (257 -> 256).
  const Tensor ib = cast(Tensor::from_vector<int32_t>({3, -8, 257}, {3}), DType::kBFloat16);
  const std::vector<BFloat16> ibv = ib.to_vector<BFloat16>();
  EXPECT_EQ(static_cast<float>(ibv[0]), 3.f);
  EXPECT_EQ(static_cast<float>(ibv[1]), -8.f);
  EXPECT_EQ(static_cast<float>(ibv[2]), 256.f);
  // bfloat16 -> int truncates like float.
  EXPECT_EQ(cast(make({2.5, -3.75}, {2}, DType::kBFloat16), DType::kInt32).to_vector<int32_t>(),
            (std::vector<int32_t>{2, -3}));
  // float64 -> float32 rounds; float32 -> float64 is exact.
  EXPECT_EQ(cast(Tensor::from_vector<double>({0.1}, {1}), DType::kFloat32).to_vector<float>()[0],
            0.1f);
  EXPECT_EQ(cast(Tensor::from_vector<float>({0.1f}, {1}), DType::kFloat64).to_vector<double>()[0],
            static_cast<double>(0.1f));
}

TEST(OpsCreation, CastToTheSameDtypeCopies) {
  Tensor x = Tensor::from_vector<int32_t>({1, 2, 3}, {3});
  Tensor y = cast(x, DType::kInt32);
  EXPECT_NE(y.storage(), x.storage());
  x.data<int32_t>()[0] = 100;
  EXPECT_EQ(y.to_vector<int32_t>(), (std::vector<int32_t>{1, 2, 3}));
}

TEST(OpsCreation, UniformMatchesPhiloxFormula) {
  const uint64_t seed = 1234, offset = 7;
  const double lo = -2.0, hi = 3.0;
  Tensor t = Tensor::empty({197, 33}, DType::kFloat32);
  uniform_(t, seed, offset, lo, hi);
  const std::vector<float> v = t.to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) {
    const double u = philox_uniform(seed, offset, i);
    ASSERT_EQ(v[i], static_cast<float>(std::fma(hi - lo, u, lo))) << "element " << i;
  }
  Tensor d = Tensor::empty({1001}, DType::kFloat64);
  uniform_(d, seed, offset, lo, hi);
  const std::vector<double> dv = d.to_vector<double>();
  for (size_t i = 0; i < dv.size(); ++i)
    ASSERT_EQ(dv[i], std::fma(hi - lo, static_cast<double>(philox_uniform(seed, offset, i)), lo));
  // bfloat16 draws are the float32 draws rounded.
  Tensor b = Tensor::empty({1001}, DType::kBFloat16);
  uniform_(b, seed, offset, lo, hi);
  Tensor f = Tensor::empty({1001}, DType::kFloat32);
  uniform_(f, seed, offset, lo, hi);
  const std::vector<BFloat16> bv = b.to_vector<BFloat16>();
  const std::vector<float> fv = f.to_vector<float>();
  for (size_t i = 0; i < bv.size(); ++i) ASSERT_EQ(bv[i].bits, bits_of(fv[i]));
}

TEST(OpsCreation, UniformRangeAndMoments) {
  const double lo = -1.0, hi = 3.0;
  Tensor t = Tensor::empty({200000}, DType::kFloat32);
  uniform_(t, 42, 0, lo, hi);
  const std::vector<double> v = host_values(t);
  double s = 0.0, s2 = 0.0;
  for (double x : v) {
    ASSERT_GE(x, lo);
    ASSERT_LT(x, hi);
    s += x;
    s2 += x * x;
  }
  const double n = static_cast<double>(v.size());
  const double m = s / n, sd = std::sqrt(s2 / n - m * m);
  // mean 1, std 4 / sqrt(12) = 1.1547; the standard error of the mean is 0.0026.
  EXPECT_NEAR(m, 1.0, 0.02);
  EXPECT_NEAR(sd, 4.0 / std::sqrt(12.0), 0.02);
}

TEST(OpsCreation, NormalMatchesPhiloxFormulaAndMoments) {
  const uint64_t seed = 99, offset = 3;
  const double mu = 0.5, sigma = 2.0;
  Tensor t = Tensor::empty({100000}, DType::kFloat32);
  normal_(t, seed, offset, mu, sigma);
  const std::vector<float> v = t.to_vector<float>();
  double s = 0.0, s2 = 0.0;
  for (size_t i = 0; i < v.size(); ++i) {
    ASSERT_EQ(v[i], static_cast<float>(std::fma(sigma, philox_normal(seed, offset, i), mu)));
    s += v[i];
    s2 += static_cast<double>(v[i]) * v[i];
  }
  const double n = static_cast<double>(v.size());
  const double m = s / n, sd = std::sqrt(s2 / n - m * m);
  EXPECT_NEAR(m, mu, 0.03);  // standard error 0.0063
  EXPECT_NEAR(sd, sigma, 0.03);
  Tensor d = Tensor::empty({513}, DType::kFloat64);
  normal_(d, seed, offset, mu, sigma);
  const std::vector<double> dv = d.to_vector<double>();
  for (size_t i = 0; i < dv.size(); ++i)
    ASSERT_EQ(dv[i], std::fma(sigma, philox_normal(seed, offset, i), mu));
}

TEST(OpsCreation, DrawsAreDeterministicPerSeedAndOffset) {
  auto draw = [](uint64_t seed, uint64_t offset, bool normal) {
    Tensor t = Tensor::empty({4, 37}, DType::kFloat32);
    if (normal)
      normal_(t, seed, offset);
    else
      uniform_(t, seed, offset);
    return t.to_vector<float>();
  };
  for (bool normal : {false, true}) {
    EXPECT_EQ(draw(5, 1, normal), draw(5, 1, normal));
    EXPECT_NE(draw(5, 1, normal), draw(5, 2, normal));
    EXPECT_NE(draw(5, 1, normal), draw(6, 1, normal));
  }
  // A shorter draw is a prefix of a longer one: element i depends on (seed, offset, i) only.
  Tensor small = Tensor::empty({10}, DType::kFloat32),
         large = Tensor::empty({1000}, DType::kFloat32);
  uniform_(small, 8, 8);
  uniform_(large, 8, 8);
  const std::vector<float> sv = small.to_vector<float>(), lv = large.to_vector<float>();
  EXPECT_TRUE(std::equal(sv.begin(), sv.end(), lv.begin()));
}

TEST(OpsCreation, DrawsRejectIntegerTensors) {
  Tensor t = Tensor::empty({3}, DType::kInt32);
  EXPECT_TRUE(throws_naming([&] { uniform_(t, 1, 0); }, "uniform_"));
  EXPECT_TRUE(throws_naming([&] { normal_(t, 1, 0); }, "normal_"));
}

}  // namespace
}  // namespace sdlora::test
