// Spirals data from the library's generator, the MLP, and its SGD loop.
#include "tests/autograd/mlp_spirals.h"

#include <cmath>
#include <vector>

#include "autograd/autograd.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace sdlora::test {

namespace {

constexpr int64_t kClasses = 3, kPerClass = 100, kHidden = 64;

// Class c: points t in [0, 1) along an arm r = t, angle = c 2 pi / 3 + 4 t, angle jittered.
void make_spirals(Tensor& x, Tensor& y) {
  Generator gen(2024);
  const std::vector<float> noise = gen.normal({kClasses * kPerClass}, 0.0, 0.15).to_vector<float>();
  std::vector<float> xs;
  std::vector<int64_t> ys;
  for (int64_t c = 0; c < kClasses; ++c)
    for (int64_t i = 0; i < kPerClass; ++i) {
      const double t = static_cast<double>(i) / kPerClass;
      const double angle = static_cast<double>(c) * 2.0 * M_PI / kClasses + 4.0 * t +
                           noise[static_cast<size_t>(c * kPerClass + i)];
      xs.push_back(static_cast<float>(t * std::sin(angle)));
      xs.push_back(static_cast<float>(t * std::cos(angle)));
      ys.push_back(c);
    }
  x = Tensor::from_vector<float>(xs, {kClasses * kPerClass, 2});
  y = Tensor::from_vector<int64_t>(ys, {kClasses * kPerClass});
}

// Uniform in +-1/sqrt(fan_in), as nn.Linear initialises.
Var param(Generator& gen, const Shape& shape, int64_t fan_in, Device device) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return Var(gen.uniform(shape, -bound, bound).to(device), true);
}

}  // namespace

MlpRun train_mlp_on_spirals(Device device, int steps, double lr) {
  Tensor x_host, y_host;
  make_spirals(x_host, y_host);
  const Tensor x = x_host.to(device), y = y_host.to(device);

  Generator gen(7);
  std::vector<Var> params{param(gen, {kHidden, 2}, 2, device), param(gen, {kHidden}, 2, device),
                          param(gen, {kClasses, kHidden}, kHidden, device),
                          param(gen, {kClasses}, kHidden, device)};
  auto forward = [&] {
    return linear(gelu(linear(Var(x), params[0], params[1])), params[2], params[3]);
  };

  MlpRun run;
  for (int step = 0; step < steps; ++step) {
    const Var loss = cross_entropy(forward(), y);
    if (step == 0) run.initial_loss = loss.data().item();
    backward(loss);
    NoGradGuard no_grad;
    for (Var& p : params) {
      Tensor value = p.data();
      add_(value, p.grad(), -lr);  // plain SGD
      p.zero_grad();
    }
  }

  NoGradGuard no_grad;
  const Var logits = forward();
  run.final_loss = cross_entropy(logits, y).data().item();
  const std::vector<int64_t> pred = argmax(logits.data(), 1).to_vector<int64_t>();
  const std::vector<int64_t> want = y_host.to_vector<int64_t>();
  int64_t correct = 0;
  for (size_t i = 0; i < want.size(); ++i) correct += pred[i] == want[i];
  run.accuracy = static_cast<double>(correct) / static_cast<double>(want.size());
  return run;
}

}  // namespace sdlora::test
