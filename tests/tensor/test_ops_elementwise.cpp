// Elementwise ops on the CPU: binary ops with numpy broadcasting against a naive reference,
// scalar forms, every unary op, pow, exact GELU and its derivative (finite differences).
#include <cmath>

#include "tests/tensor/ops_testing.h"

namespace sdlora::test {
namespace {

enum class BinaryOp { kAdd, kSub, kMul, kDiv };

double apply(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::kAdd:
      return a + b;
    case BinaryOp::kSub:
      return a - b;
    case BinaryOp::kMul:
      return a * b;
    case BinaryOp::kDiv:
      return a / b;
  }
  return 0.0;
}

Tensor run(BinaryOp op, const Tensor& a, const Tensor& b) {
  switch (op) {
    case BinaryOp::kAdd:
      return add(a, b);
    case BinaryOp::kSub:
      return sub(a, b);
    case BinaryOp::kMul:
      return mul(a, b);
    case BinaryOp::kDiv:
      return div(a, b);
  }
  return Tensor();
}

// numpy broadcasting, written out: align shapes on the right; a size-1 dim reads index 0.
std::vector<double> broadcast_reference(BinaryOp op, const Tensor& a, const Tensor& b,
                                        Shape& out_shape) {
  const size_t nd = std::max(a.shape().size(), b.shape().size());
  Shape sa(nd, 1), sb(nd, 1);
  std::copy(a.shape().rbegin(), a.shape().rend(), sa.rbegin());
  std::copy(b.shape().rbegin(), b.shape().rend(), sb.rbegin());
  out_shape.assign(nd, 0);
  for (size_t d = 0; d < nd; ++d) out_shape[d] = sa[d] == 1 ? sb[d] : sa[d];
  const std::vector<double> va = host_values(a), vb = host_values(b);
  const std::vector<int64_t> st_a = strides_of(sa), st_b = strides_of(sb);
  std::vector<double> out(static_cast<size_t>(shape_numel(out_shape)));
  for (size_t i = 0; i < out.size(); ++i) {
    const std::vector<int64_t> c = unravel(static_cast<int64_t>(i), out_shape);
    int64_t ia = 0, ib = 0;
    for (size_t d = 0; d < nd; ++d) {
      ia += (sa[d] == 1 ? 0 : c[d]) * st_a[d];
      ib += (sb[d] == 1 ? 0 : c[d]) * st_b[d];
    }
    out[i] = apply(op, va[static_cast<size_t>(ia)], vb[static_cast<size_t>(ib)]);
  }
  return out;
}

struct BroadcastCase {
  Shape a, b;
};

TEST(OpsElementwise, BinaryOpsBroadcastLikeNumpy) {
  const std::vector<BroadcastCase> cases = {
      {{4, 5}, {4, 5}},                 // same shape
      {{197, 37}, {37}},                // row broadcast
      {{197, 37}, {197, 1}},            // column broadcast
      {{6, 5}, {1}},                    // scalar-like
      {{6, 5}, {}},                     // 0-d operand
      {{}, {3, 2}},                     // 0-d on the left
      {{2, 3, 4}, {2, 1, 4}},           // middle dim
      {{3, 1}, {1, 4}},                 // both sides broadcast
      {{2, 1, 3, 1, 5}, {4, 1, 1, 5}},  // rank 5 against rank 4
      {{1, 33}, {65, 1}},               // outer product shape
      {{2, 3, 1, 7}, {2, 1, 5, 7}},     // mixed
      {{1}, {1}},
      {{1, 1, 1}, {1}},
      {{0, 3}, {3}},  // empty
  };
  uint64_t seed = 10;
  for (const BroadcastCase& c : cases) {
    for (DType dt : {DType::kFloat32, DType::kFloat64}) {
      const Tensor a = random_tensor(c.a, seed++, -2.0, 2.0, dt);
      // Keep divisors away from zero.
      const Tensor b = random_tensor(c.b, seed++, 0.5, 2.0, dt);
      for (BinaryOp op : {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul, BinaryOp::kDiv}) {
        Shape want_shape;
        const std::vector<double> want = broadcast_reference(op, a, b, want_shape);
        const Tensor got = run(op, a, b);
        ASSERT_EQ(got.shape(), want_shape) << shape_str(c.a) << " vs " << shape_str(c.b);
        EXPECT_EQ(got.dtype(), dt);
        // One rounding of an exact double result: half an ulp.
        const double rtol = dt == DType::kFloat32 ? 6e-8 : 1.2e-16;
        EXPECT_TRUE(all_close(got, want, rtol, 0.0, shape_str(c.a) + " op " + shape_str(c.b)));
      }
    }
  }
}

TEST(OpsElementwise, BinaryHandValues) {
  const Tensor a = make({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor row = make({10, 20, 30}, {3});
  const Tensor col = make({100, 200}, {2, 1});
  EXPECT_EQ(add(a, row).to_vector<float>(), (std::vector<float>{11, 22, 33, 14, 25, 36}));
  EXPECT_EQ(sub(a, col).to_vector<float>(), (std::vector<float>{-99, -98, -97, -196, -195, -194}));
  EXPECT_EQ(mul(row, col).to_vector<float>(),
            (std::vector<float>{1000, 2000, 3000, 2000, 4000, 6000}));
  EXPECT_EQ(div(a, make({2}, {})).to_vector<float>(), (std::vector<float>{0.5, 1, 1.5, 2, 2.5, 3}));
}

TEST(OpsElementwise, BinaryInBFloat16) {
  const Tensor a = random_tensor({37, 19}, 1, -3.0, 3.0, DType::kBFloat16);
  const Tensor b = random_tensor({19}, 2, 0.5, 2.0, DType::kBFloat16);
  for (BinaryOp op : {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul, BinaryOp::kDiv}) {
    Shape shape;
    const std::vector<double> want = broadcast_reference(op, a, b, shape);
    const Tensor got = run(op, a, b);
    EXPECT_EQ(got.dtype(), DType::kBFloat16);
    EXPECT_TRUE(all_close(got, want, 8e-3, 1e-6, "bfloat16"));  // one bfloat16 rounding: 2^-8
  }
}

TEST(OpsElementwise, ScalarForms) {
  const std::vector<double> xs = {-2.5, -1.0, -0.25, 0.5, 1.0, 3.0, 7.5};
  const std::vector<double> pos = {0.25, 0.5, 1.0, 2.0, 3.0, 9.0};
  for (DType dt : {DType::kFloat32, DType::kFloat64}) {
    const double rtol = dt == DType::kFloat32 ? 2e-7 : 5e-16;
    const Tensor x = make(xs, {7}, dt), p = make(pos, {2, 3}, dt);
    auto ref = [&](const std::vector<double>& v, auto f) {
      std::vector<double> r;
      for (double e : v) r.push_back(f(e));
      return r;
    };
    EXPECT_TRUE(all_close(add(x, 1.5), ref(xs, [](double e) { return e + 1.5; }), rtol, 0, "add"));
    EXPECT_TRUE(all_close(sub(x, 1.5), ref(xs, [](double e) { return e - 1.5; }), rtol, 0, "sub"));
    EXPECT_TRUE(
        all_close(rsub(1.5, x), ref(xs, [](double e) { return 1.5 - e; }), rtol, 0, "rsub"));
    EXPECT_TRUE(
        all_close(mul(x, -3.0), ref(xs, [](double e) { return e * -3.0; }), rtol, 0, "mul"));
    EXPECT_TRUE(all_close(div(x, 4.0), ref(xs, [](double e) { return e / 4.0; }), rtol, 0, "div"));
    EXPECT_TRUE(
        all_close(rdiv(3.0, p), ref(pos, [](double e) { return 3.0 / e; }), rtol, 0, "rdiv"));
    EXPECT_TRUE(all_close(pow(p, 2.0), ref(pos, [](double e) { return e * e; }), rtol, 0, "pow 2"));
    EXPECT_TRUE(all_close(pow(p, 0.5), ref(pos, [](double e) { return std::sqrt(e); }), rtol, 0,
                          "pow 0.5"));
    EXPECT_TRUE(all_close(pow(p, -1.5), ref(pos, [](double e) { return std::pow(e, -1.5); }),
                          2 * rtol, 0, "pow -1.5"));
    EXPECT_TRUE(all_close(pow(x, 3.0), ref(xs, [](double e) { return e * e * e; }), rtol, 0,
                          "pow 3 (negative base)"));
    EXPECT_EQ(add(x, 1.0).shape(), x.shape());
    EXPECT_EQ(mul(p, 2.0).dtype(), dt);
  }
  // 0-d and empty tensors
  EXPECT_DOUBLE_EQ(mul(Tensor::scalar<float>(3.f), 2.0).item(), 6.0);
  EXPECT_EQ(add(Tensor::empty({0, 4}, DType::kFloat32), 1.0).shape(), (Shape{0, 4}));
}

TEST(OpsElementwise, EveryUnaryOp) {
  const Tensor x = random_tensor({197, 45}, 7, -4.0, 4.0, DType::kFloat64);
  const Tensor xp = random_tensor({197, 45}, 8, 0.01, 10.0, DType::kFloat64);
  const std::vector<double> v = host_values(x), vp = host_values(xp);
  auto ref = [](const std::vector<double>& in, double (*f)(double)) {
    std::vector<double> r;
    for (double e : in) r.push_back(f(e));
    return r;
  };
  auto gelu_ref = [](double e) { return 0.5 * e * (1.0 + std::erf(e / std::sqrt(2.0))); };
  auto neg_ref = [](double e) { return -e; };
  struct Case {
    const char* name;
    Tensor (*op)(const Tensor&);
    bool positive;
    double (*f)(double);
  };
  const Case cases[] = {
      {"neg", neg, false, +neg_ref},
      {"exp", exp, false, [](double e) { return std::exp(e); }},
      {"log", log, true, [](double e) { return std::log(e); }},
      {"sqrt", sqrt, true, [](double e) { return std::sqrt(e); }},
      {"tanh", tanh, false, [](double e) { return std::tanh(e); }},
      {"gelu", gelu, false, +gelu_ref},
  };
  for (const Case& c : cases) {
    const Tensor& in64 = c.positive ? xp : x;
    const std::vector<double> want = ref(c.positive ? vp : v, c.f);
    EXPECT_TRUE(all_close(c.op(in64), want, 1e-14, 1e-15, std::string(c.name) + " float64"));
    const Tensor in32 = cast(in64, DType::kFloat32);
    const std::vector<double> want32 = ref(host_values(in32), c.f);
    EXPECT_TRUE(all_close(c.op(in32), want32, 1e-6, 1e-7, std::string(c.name) + " float32"));
    const Tensor in16 = cast(in64, DType::kBFloat16);
    const Tensor out16 = c.op(in16);
    EXPECT_EQ(out16.dtype(), DType::kBFloat16);
    EXPECT_TRUE(all_close(out16, ref(host_values(in16), c.f), 8e-3, 1e-6,
                          std::string(c.name) + " bfloat16"));
  }
}

TEST(OpsElementwise, GeluHandValues) {
  // 0.5 x (1 + erf(x / sqrt 2)): Phi(1) = 0.8413447460685429, Phi(-1) = 0.15865525393145707.
  const Tensor y = gelu(make({0.0, 1.0, -1.0, 3.0}, {4}, DType::kFloat64));
  EXPECT_TRUE(all_close(y, {0.0, 0.8413447460685429, -0.15865525393145707, 3 * 0.9986501019683699},
                        1e-15, 1e-16, "gelu"));
}

TEST(OpsElementwise, GeluBackwardMatchesFiniteDifferences) {
  const Tensor x = random_tensor({6, 37}, 11, -5.0, 5.0, DType::kFloat64);
  const Tensor dy = random_tensor({6, 37}, 12, -1.0, 1.0, DType::kFloat64);
  // d/dx sum(gelu(x) * dy)
  const std::vector<double> fd =
      numeric_grad(x, [&](const Tensor& xx) { return dot(gelu(xx), dy); });
  EXPECT_TRUE(all_close(gelu_backward(x, dy), fd, 1e-7, 1e-8, "gelu_backward"));
  // Hand values: gelu'(0) = 0.5, gelu'(1) = Phi(1) + phi(1).
  const Tensor g =
      gelu_backward(make({0.0, 1.0}, {2}, DType::kFloat64), make({1.0, 2.0}, {2}, DType::kFloat64));
  EXPECT_TRUE(
      all_close(g, {0.5, 2 * (0.8413447460685429 + 0.24197072451914337)}, 1e-15, 0, "gelu'"));
  // float32 and bfloat16 against the float64 result.
  const Tensor want = gelu_backward(x, dy);
  EXPECT_TRUE(all_close(gelu_backward(cast(x, DType::kFloat32), cast(dy, DType::kFloat32)), want,
                        1e-6, 1e-7, "gelu_backward float32"));
  const Tensor xb = cast(x, DType::kBFloat16), dyb = cast(dy, DType::kBFloat16);
  const Tensor gb = gelu_backward(xb, dyb);
  EXPECT_EQ(gb.dtype(), DType::kBFloat16);
  EXPECT_TRUE(all_close(gb, gelu_backward(cast(xb, DType::kFloat64), cast(dyb, DType::kFloat64)),
                        8e-3, 1e-6, "gelu_backward bfloat16"));
}

TEST(OpsElementwise, InPlaceAddAndMul) {
  Tensor a = make({1, 2, 3, 4, 5, 6}, {2, 3});
  add_(a, make({1, 1, 1}, {3}), 2.0);
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{3, 4, 5, 6, 7, 8}));
  add_(a, make({10, 20}, {2, 1}));
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{13, 14, 15, 26, 27, 28}));
  mul_(a, 0.5);
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{6.5, 7, 7.5, 13, 13.5, 14}));
  Tensor d = random_tensor({197, 33}, 4, -1, 1, DType::kFloat64);
  const Tensor e = random_tensor({197, 33}, 5, -1, 1, DType::kFloat64);
  const std::vector<double> dv = host_values(d), ev = host_values(e);
  add_(d, e, -0.75);
  std::vector<double> want(dv.size());
  for (size_t i = 0; i < dv.size(); ++i) want[i] = dv[i] + -0.75 * ev[i];
  EXPECT_TRUE(all_close(d, want, 1e-15, 1e-16, "add_ float64"));
  Tensor b = make({1, 2, 3, 4}, {2, 2}, DType::kBFloat16);
  add_(b, make({0.5, 0.25}, {2}, DType::kBFloat16));
  mul_(b, 2.0);
  EXPECT_TRUE(all_close(b, {3, 4.5, 7, 8.5}, 0, 0, "bfloat16 in place"));
  EXPECT_EQ(b.dtype(), DType::kBFloat16);
  // The destination cannot grow.
  Tensor small = make({1, 2, 3}, {3});
  EXPECT_TRUE(throws_naming([&] { add_(small, make({1, 2, 3, 4, 5, 6}, {2, 3})); }, "add_"));
}

TEST(OpsElementwise, ErrorsNameTheOpAndOperands) {
  const Tensor a = make({1, 2, 3, 4, 5, 6}, {2, 3}), b = make({1, 2}, {2});
  EXPECT_TRUE(throws_naming([&] { add(a, b); }, "add"));
  EXPECT_TRUE(throws_naming([&] { add(a, b); }, "[2, 3]"));
  EXPECT_TRUE(throws_naming(
      [&] {
        sub(make({1, 2, 3, 4}, {4, 1}), make({1, 2, 3}, {3, 1}));
      },
      "sub"));
  EXPECT_TRUE(throws_naming([&] { mul(a, cast(a, DType::kFloat64)); }, "mul"));
  EXPECT_TRUE(throws_naming([&] { mul(a, cast(a, DType::kFloat64)); }, "float64"));
  EXPECT_TRUE(throws_naming([&] { div(cast(a, DType::kInt32), cast(a, DType::kInt32)); }, "div"));
  EXPECT_TRUE(throws_naming([&] { exp(cast(a, DType::kInt64)); }, "exp"));
  EXPECT_TRUE(throws_naming([&] { pow(Tensor::from_vector<uint8_t>({1}, {1}), 2.0); }, "pow"));
  EXPECT_TRUE(throws_naming([&] { gelu_backward(a, make({1, 2, 3}, {3})); }, "gelu_backward"));
  EXPECT_TRUE(throws_naming([&] { neg(Tensor()); }, "neg"));
}

}  // namespace
}  // namespace sdlora::test
