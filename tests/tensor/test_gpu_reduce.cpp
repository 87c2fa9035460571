// CUDA reductions against the CPU (and against float64 sums for very long rows): every dim of
// awkward shapes, rows long enough for the two-pass kernels, argmax ties, bfloat16.
#include <gtest/gtest.h>

#include <cmath>

#include "tensor/ops.h"
#include "tests/tensor/gpu_compare.h"

namespace sdlora::test {
namespace {

void expect_reductions_match(const Pair& x, int64_t dim, const std::string& tag) {
  const DType dtype = x.cpu.dtype();
  const int64_t n = x.cpu.size(dim);
  const Tolerance sum_t = sum_tol(dtype, n);
  EXPECT_TRUE(all_close(sum(x.gpu, dim), sum(x.cpu, dim), sum_t.rtol, sum_t.atol, "sum " + tag));
  const Tolerance mean_t = sum_tol(dtype, 1);
  EXPECT_TRUE(all_close(mean(x.gpu, dim, true), mean(x.cpu, dim, true), mean_t.rtol,
                        mean_t.atol + sum_t.atol / static_cast<double>(n), "mean " + tag));
  EXPECT_TRUE(same_bits(max(x.gpu, dim), max(x.cpu, dim), "max " + tag));
  EXPECT_TRUE(same_bits(argmax(x.gpu, dim), argmax(x.cpu, dim), "argmax " + tag));
}

TEST(GpuReduce, EveryDimOfAwkwardShapes) {
  SDLORA_REQUIRE_GPU();
  const Shape shapes[] = {{1}, {3, 5}, {1, 7}, {197, 768}, {4, 197, 64}, {2, 3, 4, 5}, {1, 1, 1}};
  uint64_t seed = 1;
  for (DType dtype : {DType::kFloat32, DType::kBFloat16})
    for (const Shape& shape : shapes) {
      const Pair x = random_pair(shape, seed++, dtype, -3, 3);
      for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d)
        expect_reductions_match(
            x, d,
            std::string(dtype_name(dtype)) + " " + shape_str(shape) + " dim " + std::to_string(d));
      expect_reductions_match(x, -1, std::string(dtype_name(dtype)) + " dim -1");
    }
}

TEST(GpuReduce, LongRowsAndFewColumns) {
  SDLORA_REQUIRE_GPU();
  // Shapes that take the chunked (two-pass) paths: few long contiguous rows, and a long n with
  // a small inner extent.
  struct Case {
    Shape shape;
    int64_t dim;
  };
  const Case cases[] = {{{3, 200003}, 1},    {{200003, 3}, 0},    {{7, 70001, 3}, 1},
                        {{2, 50000, 40}, 1}, {{1, 300000, 1}, 1}, {{100, 5000}, 0}};
  uint64_t seed = 50;
  for (const Case& c : cases) {
    const Pair x = random_pair(c.shape, seed++, DType::kFloat32, -1, 1);
    expect_reductions_match(x, c.dim, shape_str(c.shape) + " dim " + std::to_string(c.dim));
  }
}

// Sums of millions of elements against a float64 host sum; the bound scales with sum |x|.
TEST(GpuReduce, HugeSumsAgainstFloat64) {
  SDLORA_REQUIRE_GPU();
  for (int64_t n : {int64_t{5000000}, int64_t{25000003}}) {
    const Tensor x =
        random_tensor({n}, 77 + static_cast<uint64_t>(n), -1, 1, DType::kFloat32, gpu());
    const std::vector<float> v = x.to_vector<float>();
    double exact = 0.0, magnitude = 0.0;
    for (float f : v) {
      exact += f;
      magnitude += std::fabs(f);
    }
    const double got_sum = sum(x).item();
    EXPECT_NEAR(got_sum, exact, 1e-6 * magnitude) << "sum of " << n;
    EXPECT_NEAR(mean(x).item(), exact / static_cast<double>(n),
                1e-6 * magnitude / static_cast<double>(n))
        << "mean of " << n;
    EXPECT_EQ(sum(x).shape(), Shape{});
  }
}

TEST(GpuReduce, ArgmaxTakesTheFirstMaximum) {
  SDLORA_REQUIRE_GPU();
  // Values from {0, 1, 2, 3}: many ties, which must resolve to the lowest index, also across
  // the chunks of the two-pass kernels.
  for (const Shape& shape :
       {Shape{97, 1000}, Shape{4, 300001}, Shape{300001, 2}, Shape{5, 9, 33}}) {
    const Tensor levels = cast(cast(random_tensor(shape, 9, 0, 4), DType::kInt32), DType::kFloat32);
    const Pair x = pair_of(levels);
    for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d)
      EXPECT_TRUE(same_bits(argmax(x.gpu, d), argmax(x.cpu, d),
                            "argmax ties " + shape_str(shape) + " dim " + std::to_string(d)));
    EXPECT_TRUE(same_bits(argmax(x.gpu), argmax(x.cpu), "flat argmax ties " + shape_str(shape)));
  }
  // A single maximum at the very end of a long row, and one at the very start.
  std::vector<float> v(1000003, -1.0f);
  v.back() = 5.0f;
  EXPECT_EQ(argmax(Tensor::from_vector<float>(v, {1000003}, gpu())).item(), 1000002.0);
  v.back() = -1.0f;
  v.front() = 5.0f;
  EXPECT_EQ(argmax(Tensor::from_vector<float>(v, {1000003}, gpu())).item(), 0.0);
}

TEST(GpuReduce, NegativeValuesAndInfinity) {
  SDLORA_REQUIRE_GPU();
  const std::vector<float> v = {-5.0f, -INFINITY, -2.0f, -7.0f, -INFINITY, -2.0f};
  const Pair x = pair_of(Tensor::from_vector<float>(v, {2, 3}));
  EXPECT_TRUE(same_bits(max(x.gpu, 1), max(x.cpu, 1), "max"));
  EXPECT_TRUE(same_bits(argmax(x.gpu, 0), argmax(x.cpu, 0), "argmax"));
  const Pair all_inf = pair_of(Tensor::full({3, 4}, -INFINITY));
  EXPECT_TRUE(same_bits(argmax(all_inf.gpu, 1), argmax(all_inf.cpu, 1), "argmax of -inf rows"));
}

TEST(GpuReduce, EmptySumIsZero) {
  SDLORA_REQUIRE_GPU();
  const Tensor x = Tensor::zeros({4, 0, 3}, DType::kFloat32, gpu());
  EXPECT_TRUE(all_close(sum(x, 1), std::vector<double>(12, 0.0), 0, 0, "empty sum"));
}

}  // namespace
}  // namespace sdlora::test
