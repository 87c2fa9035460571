// Reductions on the CPU: sum, mean, max and argmax over every dim (negative dims, keepdim both
// ways) and over all elements, against naive loops; first-maximum ties; double accumulation.
#include <cmath>

#include "tests/tensor/ops_testing.h"

namespace sdlora::test {
namespace {

enum class Red { kSum, kMean, kMax, kArgmax };

// Naive reduction of x along dim d: returns values and the output shape without that dim.
std::vector<double> reduce_reference(Red op, const Tensor& x, int64_t d, Shape& out_shape) {
  const Shape& s = x.shape();
  out_shape = s;
  out_shape.erase(out_shape.begin() + d);
  const std::vector<double> v = host_values(x);
  const std::vector<int64_t> st = strides_of(s);
  std::vector<double> out(static_cast<size_t>(shape_numel(out_shape)));
  for (size_t o = 0; o < out.size(); ++o) {
    std::vector<int64_t> c = unravel(static_cast<int64_t>(o), out_shape);
    c.insert(c.begin() + d, 0);
    double acc = 0.0, best = -INFINITY;
    int64_t best_k = -1;
    for (int64_t k = 0; k < s[static_cast<size_t>(d)]; ++k) {
      c[static_cast<size_t>(d)] = k;
      int64_t flat = 0;
      for (size_t i = 0; i < c.size(); ++i) flat += c[i] * st[i];
      const double e = v[static_cast<size_t>(flat)];
      acc += e;
      if (best_k < 0 || e > best) {
        best = e;
        best_k = k;
      }
    }
    switch (op) {
      case Red::kSum:
        out[o] = acc;
        break;
      case Red::kMean:
        out[o] = acc / static_cast<double>(s[static_cast<size_t>(d)]);
        break;
      case Red::kMax:
        out[o] = best;
        break;
      case Red::kArgmax:
        out[o] = static_cast<double>(best_k);
        break;
    }
  }
  return out;
}

Tensor run(Red op, const Tensor& x, int64_t dim, bool keepdim) {
  switch (op) {
    case Red::kSum:
      return sum(x, dim, keepdim);
    case Red::kMean:
      return mean(x, dim, keepdim);
    case Red::kMax:
      return max(x, dim, keepdim);
    case Red::kArgmax:
      return argmax(x, dim, keepdim);
  }
  return Tensor();
}

const char* name_of(Red op) {
  switch (op) {
    case Red::kSum:
      return "sum";
    case Red::kMean:
      return "mean";
    case Red::kMax:
      return "max";
    case Red::kArgmax:
      return "argmax";
  }
  return "";
}

TEST(OpsReduce, EveryDimKeepdimBothWays) {
  const std::vector<Shape> shapes = {{7}, {197, 37}, {3, 4, 5}, {2, 3, 1, 33}, {1, 65}};
  uint64_t seed = 100;
  for (const Shape& shape : shapes) {
    for (DType dt : {DType::kFloat32, DType::kFloat64}) {
      const Tensor x = random_tensor(shape, seed++, -3.0, 3.0, dt);
      const int64_t nd = x.ndim();
      for (int64_t dim = -nd; dim < nd; ++dim) {
        const int64_t d = dim < 0 ? dim + nd : dim;
        for (Red op : {Red::kSum, Red::kMean, Red::kMax, Red::kArgmax}) {
          Shape out_shape;
          const std::vector<double> want = reduce_reference(op, x, d, out_shape);
          const std::string what =
              std::string(name_of(op)) + " dim " + std::to_string(dim) + " of " + x.describe();
          const double rtol = dt == DType::kFloat32 ? 1e-6 : 1e-13;
          for (bool keepdim : {false, true}) {
            const Tensor got = run(op, x, dim, keepdim);
            Shape want_shape = out_shape;
            if (keepdim) want_shape.insert(want_shape.begin() + d, 1);
            ASSERT_EQ(got.shape(), want_shape) << what;
            EXPECT_EQ(got.dtype(), op == Red::kArgmax ? DType::kInt64 : dt) << what;
            if (op == Red::kArgmax || op == Red::kMax)
              EXPECT_TRUE(all_close(got, want, 0, 0, what));
            else
              EXPECT_TRUE(all_close(got, want, rtol, rtol, what));
          }
        }
      }
    }
  }
}

TEST(OpsReduce, AllElements) {
  const Tensor x = make({1, -2, 7, 3, 7, 0.5}, {2, 3});
  const Tensor s = sum(x);
  EXPECT_EQ(s.ndim(), 0);
  EXPECT_DOUBLE_EQ(s.item(), 16.5);
  EXPECT_DOUBLE_EQ(mean(x).item(), 2.75);
  EXPECT_DOUBLE_EQ(max(x).item(), 7.0);
  const Tensor am = argmax(x);
  EXPECT_EQ(am.ndim(), 0);
  EXPECT_EQ(am.dtype(), DType::kInt64);
  EXPECT_EQ(am.to_vector<int64_t>()[0], 2);  // the first of the two 7s, in flattened order
  const Tensor big = random_tensor({197, 45}, 5, -1, 1, DType::kFloat64);
  double want = 0.0;
  for (double e : host_values(big)) want += e;
  EXPECT_NEAR(sum(big).item(), want, 1e-12);
  EXPECT_NEAR(mean(big).item(), want / (197 * 45), 1e-15);
  EXPECT_DOUBLE_EQ(sum(Tensor::empty({0}, DType::kFloat32)).item(), 0.0);
  EXPECT_DOUBLE_EQ(sum(Tensor::scalar<float>(4.f)).item(), 4.0);
}

TEST(OpsReduce, ArgmaxPicksTheFirstMaximum) {
  const Tensor x = make({1, 3, 3, 2,  //
                         5, 5, 5, 5,  //
                         -1, -4, -1, -9},
                        {3, 4});
  EXPECT_EQ(argmax(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0}));
  EXPECT_EQ(argmax(x, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(argmax(x, -1, true).shape(), (Shape{3, 1}));
  EXPECT_EQ(max(x, 1).to_vector<float>(), (std::vector<float>{3, 5, -1}));
  EXPECT_EQ(max(x, 0).to_vector<float>(), (std::vector<float>{5, 5, 5, 5}));
  // all negative: the maximum is not 0
  EXPECT_EQ(max(make({-5, -2, -3}, {3})).item(), -2.0);
}

TEST(OpsReduce, Float32SumsAccumulateBeyondFloat32) {
  // In a float32 accumulator 2^24 + 1 rounds back to 2^24, so each +1 would be lost.
  std::vector<double> v(1 + 64, 1.0);
  v[0] = 16777216.0;
  const Tensor x = make(v, {static_cast<int64_t>(v.size())});
  EXPECT_EQ(sum(x).item(), 16777216.0 + 64);
  EXPECT_EQ(sum(x.reshape({1, 65}), 1).item(), 16777216.0 + 64);
  EXPECT_EQ(sum(x.reshape({65, 1}), 0).item(), 16777216.0 + 64);
}

TEST(OpsReduce, BFloat16) {
  const Tensor x = random_tensor({197, 19}, 6, -2, 2, DType::kBFloat16);
  const Tensor xf = cast(x, DType::kFloat64);
  for (int64_t dim : {0, 1}) {
    const Tensor s = sum(x, dim);
    EXPECT_EQ(s.dtype(), DType::kBFloat16);
    EXPECT_TRUE(all_close(s, sum(xf, dim), 8e-3, 1e-2, "bfloat16 sum"));
    EXPECT_TRUE(all_close(mean(x, dim), mean(xf, dim), 8e-3, 1e-3, "bfloat16 mean"));
    EXPECT_TRUE(all_close(max(x, dim), max(xf, dim), 0, 0, "bfloat16 max"));
    EXPECT_EQ(argmax(x, dim).to_vector<int64_t>(), argmax(xf, dim).to_vector<int64_t>());
  }
}

TEST(OpsReduce, BadArgumentsNameTheOp) {
  const Tensor x = make({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_TRUE(throws_naming([&] { sum(x, 2); }, "sum"));
  EXPECT_TRUE(throws_naming([&] { mean(x, -3); }, "mean"));
  EXPECT_TRUE(throws_naming([&] { max(Tensor::empty({2, 0}, DType::kFloat32), 1); }, "max"));
  EXPECT_TRUE(throws_naming([&] { argmax(Tensor::empty({0}, DType::kFloat32)); }, "argmax"));
  EXPECT_TRUE(throws_naming([&] { sum(cast(x, DType::kInt32), 0); }, "sum"));
  EXPECT_TRUE(throws_naming([&] { mean(Tensor::scalar<float>(1.f), 0); }, "mean"));
}

}  // namespace
}  // namespace sdlora::test
