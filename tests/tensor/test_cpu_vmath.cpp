// The vectorised GELU, GELU derivative and exp of tensor/cpu/vmath.h (SLEEF, each instruction
// set the processor has) against the plain scalar loops in float64 and float32.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "tensor/cpu/vmath.h"
#include "tensor/cpu/vmath_isa.h"

namespace sdlora::test {
namespace {

using cpu::gelu_grad_scalar;
using cpu::gelu_scalar;

// A dense sweep of [-lo, hi] plus special values; 1001 + 8 values, so the tail is exercised.
std::vector<float> sweep(double lo, double hi) {
  std::vector<float> v;
  for (int i = 0; i <= 1000; ++i) v.push_back(static_cast<float>(lo + (hi - lo) * i / 1000.0));
  for (float s : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-6f, -1e-6f, 30.0f, -30.0f}) v.push_back(s);
  return v;
}

struct Loops {
  std::string isa;
  void (*gelu)(const float*, float*, int64_t);
  void (*gelu_backward)(const float*, const float*, float*, int64_t);
  void (*exp)(const double*, double*, int64_t);
};

std::vector<Loops> loops_to_test() {
  std::vector<Loops> l = {{"dispatched", cpu::gelu_f32, cpu::gelu_backward_f32, cpu::exp_f64}};
#if defined(SDLORA_VMATH_X86)
  l.push_back({"sse2", cpu::sse2::gelu_f32, cpu::sse2::gelu_backward_f32, cpu::sse2::exp_f64});
  if (cpu::avx2_usable())
    l.push_back({"avx2", cpu::avx2::gelu_f32, cpu::avx2::gelu_backward_f32, cpu::avx2::exp_f64});
#endif
  return l;
}

// |got - want| <= rtol |want| + atol
::testing::AssertionResult close(double got, double want, double rtol, double atol, double x) {
  if (std::fabs(got - want) <= rtol * std::fabs(want) + atol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "at x = " << x << ": got " << got << ", want " << want;
}

// The tolerances of the float32 op tests (tests/tensor/test_ops_elementwise.cpp): the vector
// loops must meet the float64 reference as the plain float32 loop does.
constexpr double kRtol = 1e-6, kAtol = 1e-7;

// A dense sweep (2^20 points over [-9, 9]) against float64: the largest relative error where
// the value is not tiny, and the absolute error elsewhere, for GELU and its derivative.
TEST(CpuVmath, GeluErrorOverADenseSweep) {
  const int n = 1 << 20;
  std::vector<float> x(n), ones(n, 1.0f), y(n), d(n);
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>(-9.0 + 18.0 * i / (n - 1));
  for (const Loops& l : loops_to_test()) {
    SCOPED_TRACE(l.isa);
    l.gelu(x.data(), y.data(), n);
    l.gelu_backward(x.data(), ones.data(), d.data(), n);
    double worst_y = 0, worst_d = 0;
    for (int i = 0; i < n; ++i) {
      const double wy = gelu_scalar(static_cast<double>(x[i]));
      const double wd = gelu_grad_scalar(static_cast<double>(x[i]));
      worst_y = std::max(worst_y, std::fabs(y[i] - wy) / (std::fabs(wy) + kAtol / kRtol));
      worst_d = std::max(worst_d, std::fabs(d[i] - wd) / (std::fabs(wd) + kAtol / kRtol));
    }
    std::printf("%s: worst GELU error %.3g, derivative %.3g (relative, 0.1 floor)\n", l.isa.c_str(),
                worst_y, worst_d);
    EXPECT_LT(worst_y, kRtol);
    EXPECT_LT(worst_d, kRtol);
  }
}

TEST(CpuVmath, GeluOfInfinitiesAndNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {inf, -inf, std::numeric_limits<float>::quiet_NaN(), 25.0f, -25.0f};
  for (const Loops& l : loops_to_test()) {
    SCOPED_TRACE(l.isa);
    std::vector<float> y(x.size());
    l.gelu(x.data(), y.data(), static_cast<int64_t>(x.size()));
    EXPECT_EQ(y[0], inf);
    EXPECT_TRUE(std::isnan(y[1]));  // -inf * Phi(-inf) = -inf * 0, as the scalar formula gives
    EXPECT_TRUE(std::isnan(y[2]));
    EXPECT_EQ(y[3], 25.0f);
    EXPECT_EQ(y[4], 0.0f);
  }
}

TEST(CpuVmath, GeluMatchesTheScalarLoops) {
  const std::vector<float> x = sweep(-10.0, 10.0);
  const auto n = static_cast<int64_t>(x.size());
  for (const Loops& l : loops_to_test()) {
    SCOPED_TRACE(l.isa);
    std::vector<float> y(x.size());
    l.gelu(x.data(), y.data(), n);
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = gelu_scalar(static_cast<double>(x[i]));
      ASSERT_TRUE(close(y[i], want, kRtol, kAtol, x[i]));
      // and the plain float32 loop, which the float32 tests held to the same tolerance
      ASSERT_TRUE(close(y[i], gelu_scalar(x[i]), 2 * kRtol, 2 * kAtol, x[i]));
    }
    std::vector<float> inplace = x;  // y == x is allowed
    l.gelu(inplace.data(), inplace.data(), n);
    EXPECT_EQ(inplace, y);
  }
}

TEST(CpuVmath, GeluBackwardMatchesTheScalarLoops) {
  const std::vector<float> x = sweep(-10.0, 10.0);
  std::vector<float> dy(x.size());
  for (size_t i = 0; i < dy.size(); ++i) dy[i] = static_cast<float>(std::sin(0.37 * i) * 2.0);
  for (const Loops& l : loops_to_test()) {
    SCOPED_TRACE(l.isa);
    std::vector<float> dx(x.size());
    l.gelu_backward(x.data(), dy.data(), dx.data(), static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = static_cast<double>(dy[i]) * gelu_grad_scalar(static_cast<double>(x[i]));
      ASSERT_TRUE(close(dx[i], want, kRtol, kAtol, x[i]));
      ASSERT_TRUE(close(dx[i], dy[i] * gelu_grad_scalar(x[i]), 2 * kRtol, 2 * kAtol, x[i]));
    }
  }
}

TEST(CpuVmath, ExpMatchesStdExp) {
  std::vector<double> x;
  for (int i = 0; i <= 2001; ++i) x.push_back(-700.0 + 1400.0 * i / 2001.0);
  x.push_back(0.0);
  x.push_back(-std::numeric_limits<double>::infinity());  // exp(-inf - max) of a masked entry
  for (const Loops& l : loops_to_test()) {
    SCOPED_TRACE(l.isa);
    std::vector<double> y(x.size());
    l.exp(x.data(), y.data(), static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < x.size(); ++i) ASSERT_TRUE(close(y[i], std::exp(x[i]), 4e-16, 0, x[i]));
    for (int64_t n : {0, 1, 3, 5}) {  // short arrays: only the padded tail; nothing past n written
      std::vector<double> out(8, 42.0);
      l.exp(x.data(), out.data(), n);
      for (int64_t i = 0; i < 8; ++i)
        EXPECT_EQ(out[static_cast<size_t>(i)], i < n ? y[static_cast<size_t>(i)] : 42.0);
    }
  }
}

// float32 exp against double: relative error within 3e-7 over float's normal range (a sweep with
// a tail), 0 or a subnormal below it, the special values, and nothing written past n.
TEST(CpuVmath, FloatExpMatchesDouble) {
  using F = std::numeric_limits<float>;
  std::vector<float> x;
  for (int i = 0; i <= 20001; ++i) x.push_back(static_cast<float>(-87.0 + 175.0 * i / 20001.0));
  const std::vector<float> special = {0.0f,  -0.0f,  -F::infinity(), F::infinity(), F::quiet_NaN(),
                                      89.0f, -95.0f, -200.0f,        1e-30f};
  std::vector<std::pair<std::string, void (*)(const float*, float*, int64_t)>> l = {
      {"dispatched", cpu::exp_f32}};
#if defined(SDLORA_VMATH_X86)
  l.push_back({"sse2", cpu::sse2::exp_f32});
  if (cpu::avx2_usable()) l.push_back({"avx2", cpu::avx2::exp_f32});
#endif
  for (const auto& [isa, exp_f32] : l) {
    SCOPED_TRACE(isa);
    std::vector<float> y(x.size());
    exp_f32(x.data(), y.data(), static_cast<int64_t>(x.size()));
    double worst = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = std::exp(static_cast<double>(x[i]));
      if (want < 1.2e-38 || want > 3.4e38) continue;  // outside float's normal range
      worst = std::max(worst, std::fabs(y[i] - want) / want);
    }
    EXPECT_LT(worst, 3e-7);
    std::vector<float> s(special.size());
    exp_f32(special.data(), s.data(), static_cast<int64_t>(special.size()));
    EXPECT_EQ(s[0], 1.0f);
    EXPECT_EQ(s[1], 1.0f);
    EXPECT_EQ(s[2], 0.0f);
    EXPECT_EQ(s[3], F::infinity());
    EXPECT_TRUE(std::isnan(s[4]));
    EXPECT_EQ(s[5], F::infinity());
    EXPECT_LT(s[6], 1.2e-38f);  // 0 (AVX2) or the subnormal exp(-95)
    EXPECT_GE(s[6], 0.0f);
    EXPECT_EQ(s[7], 0.0f);
    EXPECT_EQ(s[8], 1.0f);
    for (int64_t n : {0, 1, 3, 7}) {
      std::vector<float> out(8, 42.0f);
      exp_f32(x.data(), out.data(), n);
      for (int64_t i = 0; i < 8; ++i)
        EXPECT_EQ(out[static_cast<size_t>(i)], i < n ? y[static_cast<size_t>(i)] : 42.0f);
    }
  }
}

// The softmax row pieces: the max, and exp(x - shift) with its double sum, for lengths around
// the vector width (tails), in place too; a NaN entry reaches the sum.
TEST(CpuVmath, SoftmaxRowPiecesMatchDouble) {
  struct Pieces {
    std::string isa;
    float (*max)(const float*, int64_t);
    double (*exp_sum)(const float*, float, float*, int64_t);
  };
  std::vector<Pieces> l = {{"dispatched", cpu::max_f32, cpu::exp_shift_sum_f32}};
#if defined(SDLORA_VMATH_X86)
  l.push_back({"sse2", cpu::sse2::max_f32, cpu::sse2::exp_shift_sum_f32});
  if (cpu::avx2_usable()) l.push_back({"avx2", cpu::avx2::max_f32, cpu::avx2::exp_shift_sum_f32});
#endif
  for (const Pieces& p : l)
    for (int64_t n : {1, 3, 8, 9, 17, 197, 1000}) {
      SCOPED_TRACE(p.isa + " n=" + std::to_string(n));
      std::vector<float> x(static_cast<size_t>(n));
      for (size_t i = 0; i < x.size(); ++i)
        x[i] = static_cast<float>(12.0 * std::sin(1.7 * i + 0.3));
      const float want_max = *std::max_element(x.begin(), x.end());
      ASSERT_EQ(p.max(x.data(), n), want_max);
      std::vector<float> y(x.size());
      const double sum = p.exp_sum(x.data(), want_max, y.data(), n);
      double want_sum = 0;
      for (size_t i = 0; i < x.size(); ++i) {
        const double want = std::exp(static_cast<double>(x[i] - want_max));
        want_sum += want;
        ASSERT_TRUE(close(y[i], want, 3e-7, 1e-37, x[i]));
      }
      EXPECT_NEAR(sum, want_sum, 1e-6 * want_sum);
      std::vector<float> inplace = x;
      EXPECT_EQ(p.exp_sum(inplace.data(), want_max, inplace.data(), n), sum);
      EXPECT_EQ(inplace, y);
      x[x.size() / 2] = std::numeric_limits<float>::quiet_NaN();
      EXPECT_TRUE(std::isnan(p.exp_sum(x.data(), want_max, y.data(), n)));
    }
}

TEST(CpuVmath, NamesTheInstructionSet) {
  const std::string isa = cpu::vmath_isa();
#if defined(SDLORA_VMATH_X86)
  EXPECT_EQ(isa, cpu::avx2_usable() ? "avx2" : "sse2");
#else
  EXPECT_EQ(isa, "scalar");
#endif
}

}  // namespace
}  // namespace sdlora::test
