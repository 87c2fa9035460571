// Module: dotted names, registration errors, train/eval, trainable lists, state-dict round trips
// and strict loading that names every missing, unexpected and mis-shaped tensor; the basic
// layers against hand-computed values and a naive convolution.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functions.h"
#include "nn/layers.h"
#include "nn/module.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora {
namespace {

using test::all_close;
using test::random_tensor;

// A two-level module: a buffer, a parameter and two children, one nested.
class Inner : public Module {
 public:
  Inner() {
    w = register_parameter("w", Tensor::zeros({2, 3}));
    lin = register_module("lin", std::make_shared<Linear>(3, 4));
  }
  Var w;
  std::shared_ptr<Linear> lin;
};

class Outer : public Module {
 public:
  Outer() {
    scale = register_parameter("scale", Tensor::full({1}, 2.0), false);
    stats = register_buffer("stats", Tensor::zeros({5}));
    inner = register_module("inner", std::make_shared<Inner>());
    norm = register_module("norm", std::make_shared<LayerNorm>(4));
  }
  void add_twice() { register_parameter("scale", Tensor::zeros({1})); }
  void add_dotted() { register_parameter("a.b", Tensor::zeros({1})); }
  Var scale, stats;
  std::shared_ptr<Inner> inner;
  std::shared_ptr<LayerNorm> norm;
};

using test::error_of;

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Var>>& list) {
  std::vector<std::string> out;
  for (const auto& [n, v] : list) out.push_back(n);
  return out;
}

TEST(Module, NamesParametersBuffersAndChildrenWithDots) {
  Outer m;
  EXPECT_EQ(names_of(m.named_parameters()),
            (std::vector<std::string>{"scale", "inner.w", "inner.lin.weight", "inner.lin.bias",
                                      "norm.weight", "norm.bias"}));
  EXPECT_EQ(names_of(m.named_buffers()), std::vector<std::string>{"stats"});
  ASSERT_EQ(m.children().size(), 2u);
  EXPECT_EQ(m.children()[0].first, "inner");
  // The handles are the module's own: writing through one is seen by the other.
  Tensor w = m.find("inner.lin.weight").data();
  fill_(w, 3.0);
  EXPECT_EQ(m.inner->lin->weight().data().to_vector<float>()[0], 3.0f);
  EXPECT_NE(error_of([&] { (void)m.find("inner.nope"); }).find("inner.nope"), std::string::npos);
}

TEST(Module, RejectsDuplicateAndDottedNames) {
  Outer m;
  EXPECT_NE(error_of([&] { m.add_twice(); }).find("registered twice"), std::string::npos);
  EXPECT_NE(error_of([&] { m.add_dotted(); }).find("'a.b'"), std::string::npos);
}

TEST(Module, TrainEvalAndTrainableParameters) {
  Outer m;
  EXPECT_TRUE(m.inner->lin->is_training());
  m.eval();
  EXPECT_FALSE(m.is_training());
  EXPECT_FALSE(m.inner->lin->is_training());
  m.train();
  EXPECT_TRUE(m.norm->is_training());

  EXPECT_EQ(m.trainable_parameters().size(), 5u);  // all but scale
  m.inner->set_requires_grad(false);
  const std::vector<Var> t = m.trainable_parameters();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].state(), m.norm->weight().state());
  EXPECT_EQ(t[1].state(), m.norm->bias().state());
}

TEST(Module, StateDictRoundTripIsExact) {
  Outer a, b;
  uint64_t seed = 1;
  for (auto& [name, v] : a.named_parameters()) {
    Tensor d = v.data();
    d.copy_(random_tensor(v.shape(), seed++));
  }
  Tensor s = a.stats.data();
  s.copy_(random_tensor({5}, 99));
  const LoadReport r = b.load_state_dict(a.state_dict());
  EXPECT_TRUE(r.missing.empty() && r.unexpected.empty());
  for (auto& [name, t] : a.state_dict()) {
    const Tensor got = b.find(name).data();
    EXPECT_EQ(got.to_vector<float>(), t.to_vector<float>()) << name;
    EXPECT_NE(got.storage(), t.storage()) << name << " should be copied, not shared";
  }
}

TEST(Module, StrictLoadNamesEveryProblemInOneErrorAndWritesNothing) {
  Outer m;
  auto state = m.state_dict();
  for (auto& [name, t] : state) t = t.clone();
  state.erase("inner.w");
  state.erase("norm.bias");
  state["inner.lin.weight"] = Tensor::zeros({3, 4});  // transposed
  state["extra.thing"] = Tensor::zeros({1});
  state["scale"] = Tensor::full({1}, 7.0);
  const std::string err = error_of([&] { m.load_state_dict(state); });
  for (const char* name : {"missing (2)", "inner.w", "norm.bias", "unexpected (1)", "extra.thing",
                           "mis-shaped (1)", "inner.lin.weight (checkpoint [3, 4], model [4, 3])"})
    EXPECT_NE(err.find(name), std::string::npos) << "missing '" << name << "' in:\n" << err;
  EXPECT_EQ(m.scale.data().item(), 2.0) << "a failed load must not write anything";

  // Non-strict: missing and unexpected are reported, not fatal; a wrong shape still is.
  const std::string err2 = error_of([&] { m.load_state_dict(state, false); });
  EXPECT_NE(err2.find("inner.lin.weight"), std::string::npos);
  EXPECT_EQ(err2.find("missing"), std::string::npos);
  state["inner.lin.weight"] = Tensor::zeros({4, 3});
  const LoadReport r = m.load_state_dict(state, false);
  EXPECT_EQ(r.missing, (std::vector<std::string>{"inner.w", "norm.bias"}));
  EXPECT_EQ(r.unexpected, std::vector<std::string>{"extra.thing"});
  EXPECT_EQ(m.scale.data().item(), 7.0);
}

TEST(Module, LoadCastsToTheParameterDtype) {
  Linear l(2, 1, false);
  l.load_state_dict({{"weight", Tensor::from_vector<double>({0.5, -1.5}, {1, 2})}});
  EXPECT_EQ(l.weight().dtype(), DType::kFloat32);
  EXPECT_EQ(l.weight().data().to_vector<float>(), (std::vector<float>{0.5f, -1.5f}));
}

TEST(Layers, LinearMatchesHandComputedValuesAndInit) {
  Linear l(3, 2);
  l.load_state_dict({{"weight", Tensor::from_vector<float>({1, 2, 3, -1, 0, 1}, {2, 3})},
                     {"bias", Tensor::from_vector<float>({0.5, -0.5}, {2})}});
  const Var y = l.forward(Var(Tensor::from_vector<float>({1, 1, 1, 2, 0, -1}, {2, 3})));
  EXPECT_TRUE(all_close(y.data(), std::vector<double>{6.5, -0.5, -0.5, -3.5}, 0, 0, "linear"));

  Linear big(400, 50);
  Generator gen(3);
  big.reset_parameters(gen);
  const double bound = 1.0 / std::sqrt(400.0);
  const double wmax = max(big.weight().data()).item(), wmin = -max(neg(big.weight().data())).item();
  EXPECT_LE(wmax, bound);
  EXPECT_GE(wmin, -bound);
  EXPECT_GT(wmax, 0.9 * bound);
}

TEST(Layers, LayerNormMatchesHandComputedValues) {
  LayerNorm n(4, 1e-6);
  const Var y = n.forward(Var(Tensor::from_vector<float>({1, 2, 3, 4}, {1, 4})));
  const double m = 2.5, sd = std::sqrt(1.25 + 1e-6);
  EXPECT_TRUE(all_close(y.data(), {(1 - m) / sd, (2 - m) / sd, (3 - m) / sd, (4 - m) / sd}, 1e-5,
                        1e-6, "layernorm"));
  EXPECT_DOUBLE_EQ(n.eps(), 1e-6);
}

TEST(Layers, PatchConvEqualsAStridedConvolution) {
  const int64_t B = 2, C = 3, H = 8, W = 4, p = 2, O = 5;
  PatchConv conv(C, O, p);
  Generator gen(11);
  conv.reset_parameters(gen);
  const Tensor x = random_tensor({B, C, H, W}, 12);
  const Tensor y = conv.forward(Var(x)).data();
  ASSERT_EQ(y.shape(), (Shape{B, (H / p) * (W / p), O}));
  // The naive convolution: out[b, o, gy, gx] = bias[o] + sum_{c,i,j} w[o,c,i,j] x[b,c,gy p+i,gx
  // p+j], tokens in row-major grid order.
  const auto xv = x.to_vector<float>(), wv = conv.weight().data().to_vector<float>(),
             bv = conv.bias().data().to_vector<float>();
  std::vector<double> want;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t gy = 0; gy < H / p; ++gy)
      for (int64_t gx = 0; gx < W / p; ++gx)
        for (int64_t o = 0; o < O; ++o) {
          double s = bv[o];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < p; ++i)
              for (int64_t j = 0; j < p; ++j)
                s += wv[((o * C + c) * p + i) * p + j] *
                     xv[((b * C + c) * H + gy * p + i) * W + gx * p + j];
          want.push_back(s);
        }
  EXPECT_TRUE(all_close(y, want, 1e-5, 1e-6, "patch conv"));
}

TEST(Layers, MlpIsFc1GeluFc2) {
  Mlp mlp(3, 6);
  Generator gen(5);
  mlp.fc1().reset_parameters(gen);
  mlp.fc2().reset_parameters(gen);
  EXPECT_EQ(names_of(mlp.named_parameters()),
            (std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}));
  const Tensor x = random_tensor({2, 3}, 6);
  const Tensor h =
      gelu(add(matmul(x, mlp.fc1().weight().data(), false, true), mlp.fc1().bias().data()));
  const Tensor want =
      add(matmul(h, mlp.fc2().weight().data(), false, true), mlp.fc2().bias().data());
  EXPECT_TRUE(all_close(mlp.forward(Var(x)).data(), want, 1e-6, 1e-7, "mlp"));
}

}  // namespace
}  // namespace sdlora
