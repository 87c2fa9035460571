// CUDA against the CPU: unary maths, tensor-scalar ops, broadcast binary ops, the GELU
// derivative and the in-place forms, in float32 and bfloat16, at awkward shapes.
#include <gtest/gtest.h>

#include <functional>

#include "tensor/ops.h"
#include "tests/tensor/gpu_compare.h"

namespace sdlora::test {
namespace {

const DType kFloatDTypes[] = {DType::kFloat32, DType::kBFloat16};
const Shape kShapes[] = {{1}, {3, 5}, {197, 768}, {2, 197, 65}, {1000003}};

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> f;
  double lo, hi;
};

TEST(GpuElementwise, UnaryMatchesCpu) {
  SDLORA_REQUIRE_GPU();
  const UnaryCase cases[] = {
      {"neg", [](const Tensor& x) { return neg(x); }, -3, 3},
      {"exp", [](const Tensor& x) { return exp(x); }, -10, 10},
      {"log", [](const Tensor& x) { return log(x); }, 1e-3, 50},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, 0, 50},
      {"tanh", [](const Tensor& x) { return tanh(x); }, -5, 5},
      {"gelu", [](const Tensor& x) { return gelu(x); }, -6, 6},
  };
  uint64_t seed = 1;
  for (const UnaryCase& c : cases)
    for (DType dtype : kFloatDTypes)
      for (const Shape& shape : kShapes) {
        const Pair x = random_pair(shape, seed++, dtype, c.lo, c.hi);
        const Tolerance tol = elementwise_tol(dtype);
        EXPECT_TRUE(
            all_close(c.f(x.gpu), c.f(x.cpu), tol.rtol, tol.atol,
                      std::string(c.name) + " " + dtype_name(dtype) + " " + shape_str(shape)));
      }
}

TEST(GpuElementwise, UnalignedViewsMatchCpu) {
  SDLORA_REQUIRE_GPU();
  // Rows 1.. of a (7, 3) tensor start 12 bytes in: the kernels must take the unvectorised path.
  for (DType dtype : kFloatDTypes) {
    const Pair x = random_pair({7, 3}, 5, dtype, -2, 2);
    const Tensor xg = x.gpu.narrow(1, 6), xc = x.cpu.narrow(1, 6);
    const Tolerance tol = elementwise_tol(dtype);
    EXPECT_TRUE(all_close(exp(xg), exp(xc), tol.rtol, tol.atol, "exp of a view"));
    EXPECT_TRUE(all_close(add(xg, xg), add(xc, xc), tol.rtol, tol.atol, "add of views"));
    EXPECT_TRUE(all_close(mul(xg, 3.0), mul(xc, 3.0), tol.rtol, tol.atol, "mul of a view"));
  }
}

TEST(GpuElementwise, ScalarOpsMatchCpu) {
  SDLORA_REQUIRE_GPU();
  using F = std::function<Tensor(const Tensor&)>;
  const std::pair<const char*, F> cases[] = {
      {"add", [](const Tensor& x) { return add(x, 0.75); }},
      {"sub", [](const Tensor& x) { return sub(x, -1.5); }},
      {"rsub", [](const Tensor& x) { return rsub(2.0, x); }},
      {"mul", [](const Tensor& x) { return mul(x, -3.25); }},
      {"div", [](const Tensor& x) { return div(x, 7.0); }},
      {"rdiv", [](const Tensor& x) { return rdiv(1.5, x); }},
      {"pow 2", [](const Tensor& x) { return pow(x, 2.0); }},
      {"pow 0.5", [](const Tensor& x) { return pow(x, 0.5); }},
      {"pow -1.5", [](const Tensor& x) { return pow(x, -1.5); }},
  };
  uint64_t seed = 100;
  for (const auto& [name, f] : cases)
    for (DType dtype : kFloatDTypes)
      for (const Shape& shape : kShapes) {
        const Pair x = random_pair(shape, seed++, dtype, 0.1, 4.0);  // positive: pow and rdiv
        const Tolerance tol = elementwise_tol(dtype);
        EXPECT_TRUE(
            all_close(f(x.gpu), f(x.cpu), tol.rtol, tol.atol,
                      std::string(name) + " " + dtype_name(dtype) + " " + shape_str(shape)));
      }
}

TEST(GpuElementwise, BroadcastBinaryMatchesCpu) {
  SDLORA_REQUIRE_GPU();
  const std::pair<Shape, Shape> patterns[] = {
      {{197, 768}, {197, 768}},            // same shape
      {{197, 768}, {768}},                 // bias over rows
      {{2, 197, 768}, {1, 197, 768}},      // shared over the batch
      {{128, 1, 64}, {1, 197, 64}},        // both sides broadcast
      {{3, 1}, {1, 5}},                    // outer product
      {{3, 5}, {1}},                       // one element
      {{3, 5}, {}},                        // a 0-d tensor
      {{}, {4, 1, 3}},                     // 0-d on the left
      {{2, 3, 4, 5}, {3, 1, 5}},           // a middle dim broadcast
      {{5, 1, 7, 1, 3}, {1, 6, 1, 2, 1}},  // alternating
      {{1}, {1}},
      {{1, 1, 1}, {1}},
  };
  using F = std::function<Tensor(const Tensor&, const Tensor&)>;
  const std::pair<const char*, F> ops[] = {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }},
  };
  uint64_t seed = 300;
  for (const auto& [sa, sb] : patterns)
    for (const auto& [name, f] : ops)
      for (DType dtype : kFloatDTypes) {
        const Pair a = random_pair(sa, seed++, dtype, -2, 2);
        const Pair b = random_pair(sb, seed++, dtype, 0.5, 2);  // away from 0 for div
        const Tolerance tol = elementwise_tol(dtype);
        const std::string what = std::string(name) + " " + dtype_name(dtype) + " " + shape_str(sa) +
                                 " with " + shape_str(sb);
        EXPECT_TRUE(all_close(f(a.gpu, b.gpu), f(a.cpu, b.cpu), tol.rtol, tol.atol, what));
        EXPECT_TRUE(
            all_close(f(b.gpu, a.gpu), f(b.cpu, a.cpu), tol.rtol, tol.atol, what + " (swapped)"));
      }
}

TEST(GpuElementwise, GeluBackwardMatchesCpu) {
  SDLORA_REQUIRE_GPU();
  uint64_t seed = 500;
  for (DType dtype : kFloatDTypes)
    for (const Shape& shape : kShapes) {
      const Pair x = random_pair(shape, seed++, dtype, -6, 6);
      const Pair dy = random_pair(shape, seed++, dtype, -1, 1);
      const Tolerance tol = elementwise_tol(dtype);
      EXPECT_TRUE(
          all_close(gelu_backward(x.gpu, dy.gpu), gelu_backward(x.cpu, dy.cpu), tol.rtol, tol.atol,
                    std::string("gelu_backward ") + dtype_name(dtype) + " " + shape_str(shape)));
    }
}

TEST(GpuElementwise, InPlaceOpsMatchCpu) {
  SDLORA_REQUIRE_GPU();
  for (DType dtype : kFloatDTypes) {
    const Tolerance tol = elementwise_tol(dtype);
    Pair a = random_pair({197, 768}, 600, dtype);
    const Pair b = random_pair({768}, 601, dtype);
    Tensor ag = a.gpu.clone(), ac = a.cpu.clone();
    add_(ag, b.gpu, -0.5);
    add_(ac, b.cpu, -0.5);
    EXPECT_TRUE(all_close(ag, ac, tol.rtol, tol.atol, std::string("add_ ") + dtype_name(dtype)));
    const Pair full = random_pair({197, 768}, 602, dtype);
    add_(ag, full.gpu);
    add_(ac, full.cpu);
    EXPECT_TRUE(
        all_close(ag, ac, tol.rtol, tol.atol, std::string("add_ same shape ") + dtype_name(dtype)));
    mul_(ag, 1.75);
    mul_(ac, 1.75);
    EXPECT_TRUE(all_close(ag, ac, tol.rtol, tol.atol, std::string("mul_ ") + dtype_name(dtype)));
  }
}

}  // namespace
}  // namespace sdlora::test
