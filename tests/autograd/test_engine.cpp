// The engine's semantics: accumulation, aliasing, NoGradGuard, detach, zero_grad, one-shot
// graphs, error messages, and memory returning to the allocator after backward.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "autograd/autograd.h"
#include "autograd/node.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora::test {
namespace {

Tensor t64(const std::vector<double>& v, const Shape& s) {
  return Tensor::from_vector<double>(v, s);
}

using test::throws_naming;

int64_t live_cpu_bytes() { return memory_stats(Device::cpu()).live_bytes; }

TEST(Backward, ScalarChainRule) {
  Var x(t64({0.5, -1.0, 2.0}, {3}), true);
  backward(sum(exp(x) * x));  // d/dx = e^x (1 + x)
  std::vector<double> want;
  for (double v : {0.5, -1.0, 2.0}) want.push_back(std::exp(v) * (1.0 + v));
  EXPECT_TRUE(all_close(x.grad(), want, 1e-12, 1e-12, "dx"));
}

TEST(Backward, VarUsedTwiceGetsBothContributions) {
  Var x(t64({1.0, -2.0, 3.0}, {3}), true);
  backward(sum(x * x + x));  // 2x + 1
  EXPECT_TRUE(all_close(x.grad(), {3.0, -3.0, 7.0}, 0, 0, "d(x^2 + x)"));

  Var y(t64({1.0, 2.0}, {2}), true);
  backward(sum(add(y, y)));  // the same leaf on both inputs of one node
  EXPECT_TRUE(all_close(y.grad(), {2.0, 2.0}, 0, 0, "d(y + y)"));
}

TEST(Backward, DiamondThroughANonLeaf) {
  Var x(t64({0.3, -0.7}, {2}), true);
  const Var h = tanh(x);
  backward(sum(h * h + h * 3.0));  // (2h + 3)(1 - h^2)
  std::vector<double> want;
  for (double v : {0.3, -0.7})
    want.push_back((2 * std::tanh(v) + 3) * (1 - std::tanh(v) * std::tanh(v)));
  EXPECT_TRUE(all_close(x.grad(), want, 1e-12, 1e-12, "dx"));
  EXPECT_FALSE(h.grad().defined()) << "non-leaf gradients are not retained";
}

TEST(Backward, GradientsOfDifferentLeavesDoNotShareMemory) {
  Var a(t64({1.0, 2.0}, {2}), true), b(t64({3.0, 4.0}, {2}), true);
  backward(sum(a + b));  // both receive the same dy
  ASSERT_NE(a.grad().storage(), b.grad().storage());
  Tensor ga = a.grad();
  mul_(ga, 10.0);
  EXPECT_TRUE(all_close(b.grad(), {1.0, 1.0}, 0, 0, "b.grad after scaling a.grad"));
}

TEST(Backward, AccumulatesAcrossCallsUntilZeroGrad) {
  Var w(t64({1.0, 2.0}, {2}), true);
  backward(sum(w * 2.0));
  backward(sum(w * 3.0));
  EXPECT_TRUE(all_close(w.grad(), {5.0, 5.0}, 0, 0, "accumulated"));
  const Storage* storage = w.grad().storage();
  w.zero_grad();
  EXPECT_TRUE(all_close(w.grad(), {0.0, 0.0}, 0, 0, "after zero_grad"));
  EXPECT_EQ(w.grad().storage(), storage) << "zero_grad keeps the gradient's memory";
  backward(sum(w * 4.0));
  EXPECT_TRUE(all_close(w.grad(), {4.0, 4.0}, 0, 0, "after zero_grad and backward"));
  w.clear_grad();
  EXPECT_FALSE(w.grad().defined());
}

TEST(Backward, FrozenInputsGetNoGradient) {
  Var x(t64({1.0, 2.0}, {1, 2}), false), w(t64({0.5, -0.5, 1.0, 1.0}, {2, 2}), true);
  backward(sum(linear(x, w)));
  EXPECT_FALSE(x.grad().defined());
  EXPECT_TRUE(all_close(w.grad(), {1.0, 2.0, 1.0, 2.0}, 0, 0, "dw"));
}

TEST(Backward, NonScalarOutputNeedsASeed) {
  Var x(t64({1.0, 2.0}, {2}), true);
  const Var y = x * 3.0;
  EXPECT_TRUE(throws_naming([&] { backward(y); }, "pass the output's gradient"));
  backward(y, t64({1.0, 10.0}, {2}));
  EXPECT_TRUE(all_close(x.grad(), {3.0, 30.0}, 0, 0, "dx"));
}

TEST(Backward, SecondBackwardThroughAFreedGraphThrows) {
  Var x(t64({1.0}, {1}), true);
  const Var loss = sum(exp(x));
  backward(loss);
  EXPECT_TRUE(throws_naming([&] { backward(loss); }, "already freed"));
}

TEST(Backward, OutputWithoutHistoryThrows) {
  Var x(t64({1.0}, {1}), false);
  EXPECT_TRUE(throws_naming([&] { backward(sum(x)); }, "does not require grad"));
}

TEST(Backward, SeedMustMatchTheOutput) {
  Var x(t64({1.0, 2.0}, {2}), true);
  EXPECT_TRUE(
      throws_naming([&] { backward(x * 2.0, t64({1.0}, {1})); }, "should match the output"));
}

TEST(Backward, LeafLossGetsTheSeed) {
  Var x(t64({4.0}, {1}), true);
  backward(x);
  EXPECT_TRUE(all_close(x.grad(), {1.0}, 0, 0, "dx"));
}

TEST(NoGrad, GuardStopsRecordingAndRestores) {
  Var x(t64({1.0, 2.0}, {2}), true);
  EXPECT_TRUE(grad_enabled());
  {
    NoGradGuard outer;
    {
      NoGradGuard inner;
      EXPECT_FALSE(grad_enabled());
    }
    EXPECT_FALSE(grad_enabled()) << "guards nest";
    const Var y = x * 2.0;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(y.is_leaf());
    EXPECT_TRUE(all_close(y.data(), {2.0, 4.0}, 0, 0, "value under no_grad"));
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_TRUE((x * 2.0).requires_grad());
}

TEST(NoGrad, IsThreadLocal) {
  NoGradGuard guard;
  bool other_thread = false;
  std::thread t([&] {
    other_thread = grad_enabled();
    Var x(t64({1.0}, {1}), true);
    backward(sum(x * 5.0));  // records and differentiates on this thread
    other_thread = other_thread && x.grad().defined();
  });
  t.join();
  EXPECT_TRUE(other_thread);
  EXPECT_FALSE(grad_enabled());
}

TEST(Detach, SharesTheValueAndCutsTheHistory) {
  Var x(t64({2.0, 3.0}, {2}), true);
  const Var h = x * x;
  const Var d = h.detach();
  EXPECT_EQ(d.data().storage(), h.data().storage());
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  backward(sum(d * x));  // d is a constant: dx = d = x^2
  EXPECT_TRUE(all_close(x.grad(), {4.0, 9.0}, 0, 0, "dx through a detached factor"));
}

TEST(VarApi, MisuseThrowsANamedError) {
  EXPECT_TRUE(throws_naming([] { Var(Tensor::zeros({2}, DType::kInt64), true); }, "float"));
  Var x(t64({1.0}, {1}), true);
  const Var y = x * 2.0;
  EXPECT_TRUE(throws_naming([&] { Var(y).set_requires_grad(false); }, "only leaves"));
  EXPECT_TRUE(throws_naming([] { Var().data(); }, "undefined Var"));
  EXPECT_NE(y.describe().find("from mul"), std::string::npos) << y.describe();
}

TEST(SumToShape, ReducesBroadcastDims) {
  const Tensor g = t64({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 2, 3});
  EXPECT_TRUE(all_close(sum_to_shape(g, {3}), {1 + 4 + 7 + 10, 2 + 5 + 8 + 11, 3 + 6 + 9 + 12}, 0,
                        0, "to [3]"));
  EXPECT_TRUE(all_close(sum_to_shape(g, {2, 1}), {1 + 2 + 3 + 7 + 8 + 9, 4 + 5 + 6 + 10 + 11 + 12},
                        0, 0, "to [2, 1]"));
  EXPECT_TRUE(all_close(sum_to_shape(g, {2, 1, 3}), {5, 7, 9, 17, 19, 21}, 0, 0, "to [2, 1, 3]"));
  EXPECT_TRUE(all_close(sum_to_shape(g, {}), {78}, 0, 0, "to []"));
  EXPECT_EQ(sum_to_shape(g, {2, 2, 3}).storage(), g.storage()) << "no copy when shapes match";
  EXPECT_THROW(sum_to_shape(g, {2}), Error);
}

TEST(CrossEntropyRange, OldColumnsGetExactlyZeroGradient) {
  const Tensor logits = random_tensor({3, 7}, 5, -2.0, 2.0, DType::kFloat64);
  const Tensor y = Tensor::from_vector<int64_t>({4, 6, 5}, {3});
  Var x(logits, true);
  const Var loss = cross_entropy(x, y, 4, 7);
  // The same loss as the full cross-entropy of the sliced logits with shifted labels.
  const Var ref =
      cross_entropy(Var(slice(logits, 1, 4, 7)), Tensor::from_vector<int64_t>({0, 2, 1}, {3}));
  EXPECT_NEAR(loss.data().item(), ref.data().item(), 1e-12);
  backward(loss);
  const std::vector<double> g = host_values(x.grad());
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t c = 0; c < 4; ++c)
      EXPECT_EQ(g[static_cast<size_t>(r * 7 + c)], 0.0) << r << "," << c;
  EXPECT_TRUE(throws_naming(
      [&] {
        cross_entropy(x, Tensor::from_vector<int64_t>({1, 6, 5}, {3}), 4, 7);
      },
      "outside the column range [4, 7)"));
  EXPECT_TRUE(throws_naming([&] { cross_entropy(x, y, 4, 9); }, "column range"));
}

TEST(CrossEntropy, Float32LossAndGradient) {
  // float32 logits go through the loss kernel; the value and gradient match the float64 path.
  const Tensor logits = random_tensor({4, 5}, 6, -2.0, 2.0, DType::kFloat64);
  const Tensor y = Tensor::from_vector<int32_t>({1, 0, 4, 2}, {4});
  Var x64(logits, true), x32(cast(logits, DType::kFloat32), true);
  const Var l64 = cross_entropy(x64, y), l32 = cross_entropy(x32, y);
  EXPECT_EQ(l32.dtype(), DType::kFloat32);
  EXPECT_NEAR(l32.data().item(), l64.data().item(), 1e-6);
  backward(l64);
  backward(l32);
  EXPECT_TRUE(all_close(x32.grad(), x64.grad(), 1e-5, 1e-7, "dlogits float32"));
}

TEST(Cast, GradientComesBackInTheSourceDtype) {
  Var x(t64({1.0, 2.0}, {2}), true);
  const Var y = cast(x, DType::kFloat32);
  EXPECT_EQ(y.dtype(), DType::kFloat32);
  backward(sum(y * 3.0));
  EXPECT_EQ(x.grad().dtype(), DType::kFloat64);
  EXPECT_TRUE(all_close(x.grad(), {3.0, 3.0}, 0, 0, "dx"));
}

TEST(FusedOps, ShapeErrorsNameTheOperands) {
  Var x(Tensor::zeros({2, 3}), true), w(Tensor::zeros({4, 5}), true);
  EXPECT_TRUE(throws_naming([&] { linear(x, w); }, "linear"));
  Var q(Tensor::zeros({1, 2, 3, 4})), k(Tensor::zeros({1, 2, 3, 5}));
  EXPECT_TRUE(throws_naming([&] { attention(q, k, k); }, "attention"));
  EXPECT_TRUE(throws_naming([&] { scale(x, x); }, "one element"));
}

// ---- memory: what the graph holds goes back to the allocator

struct TinyNet {
  Var w1{random_tensor({16, 8}, 11, -0.3, 0.3), true};
  Var b1{Tensor::zeros({16}), true};
  Var ln_w{Tensor::full({16}, 1.0), true};
  Var ln_b{Tensor::zeros({16}), true};
  Var alpha{Tensor::full({1}, 0.8), true};
  Var head{random_tensor({6, 16}, 12, -0.3, 0.3), true};
};

// linear, GELU, LayerNorm, attention, scale, cat/slice, max and a range cross-entropy.
Var tiny_loss(const TinyNet& n, const Tensor& x, const Tensor& y) {
  const int64_t B = x.size(0), N = x.size(1);
  const Var h = layernorm(gelu(linear(Var(x), n.w1, n.b1)), n.ln_w, n.ln_b, 1e-6);  // (B, N, 16)
  const Var heads = permute(reshape(h, {B, N, 2, 8}), {0, 2, 1, 3});                // (B, 2, N, 8)
  const Var o = reshape(permute(attention(heads, heads, heads), {0, 2, 1, 3}), {B, N, 16});
  const Var pooled = scale(mean(o, 1), n.alpha) + max(h, 1);
  const Var feats = cat({slice(pooled, 1, 0, 8), slice(pooled, 1, 8, 16)}, 1);
  return cross_entropy(linear(feats, n.head), y, 2, 6);
}

TEST(Memory, GraphIsReleasedByBackwardAndOnScopeExit) {
  TinyNet net;
  const Tensor x = random_tensor({4, 5, 8}, 13);
  const Tensor y = Tensor::from_vector<int64_t>({2, 3, 5, 4}, {4});
  backward(tiny_loss(net, x, y));  // allocates the parameters' gradients
  const int64_t baseline = live_cpu_bytes();
  {
    const Var loss = tiny_loss(net, x, y);
    EXPECT_GT(live_cpu_bytes() - baseline, 4096) << "the graph holds its saved activations";
    backward(loss);
    // Only the loss value itself outlives backward.
    EXPECT_EQ(live_cpu_bytes() - baseline,
              static_cast<int64_t>(CachingPool::size_class(loss.data().nbytes())));
  }
  EXPECT_EQ(live_cpu_bytes(), baseline);
  {
    const Var unused = tiny_loss(net, x, y);  // a graph dropped without backward
  }
  EXPECT_EQ(live_cpu_bytes(), baseline);
}

TEST(Memory, InputsOfFrozenWeightsAreNotSaved) {
  Var w(random_tensor({32, 64}, 14), false), b(Tensor::zeros({32}), true);
  const int64_t baseline = live_cpu_bytes();
  Var y;
  {
    const Tensor x = random_tensor({128, 64}, 15);
    y = linear(Var(x), w, b);  // db needs nothing saved; dx and dw are not needed
  }
  EXPECT_EQ(live_cpu_bytes() - baseline,
            static_cast<int64_t>(CachingPool::size_class(y.data().nbytes())));
  backward(sum(y));
  EXPECT_TRUE(all_close(b.grad(), std::vector<double>(32, 128.0), 0, 0, "db"));
}

}  // namespace
}  // namespace sdlora::test
