// Optimizers on CUDA against the CPU: the same parameters and gradients, several steps, awkward
// sizes; a state saved from CUDA parameters resumes on the CPU and the other way round.
#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "nn/optim.h"
#include "nn/scheduler.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora {
namespace {

// Sizes with no friendly multiples: a single element, a ViT token count, an odd matrix.
const std::vector<Shape> kShapes = {{1}, {197}, {37, 45}, {3, 5, 7}};
constexpr int kSteps = 6;

using MakeOptimizer = std::function<std::unique_ptr<Optimizer>(std::vector<ParamGroup>)>;

std::vector<std::pair<std::string, MakeOptimizer>> optimizers() {
  SGDOptions sgd;
  sgd.lr = 0.1;
  sgd.momentum = 0.9;
  sgd.nesterov = true;
  sgd.weight_decay = 0.01;
  SGDOptions damp;
  damp.lr = 0.05;
  damp.momentum = 0.8;
  damp.dampening = 0.3;
  AdamOptions adam;
  adam.lr = 0.01;
  adam.weight_decay = 0.1;
  AdamOptions adamw = AdamW::default_options();
  adamw.lr = 0.02;
  return {
      {"sgd_nesterov_wd",
       [=](std::vector<ParamGroup> g) { return std::make_unique<SGD>(std::move(g), sgd); }},
      {"sgd_dampening",
       [=](std::vector<ParamGroup> g) { return std::make_unique<SGD>(std::move(g), damp); }},
      {"adam_wd",
       [=](std::vector<ParamGroup> g) { return std::make_unique<Adam>(std::move(g), adam); }},
      {"adamw",
       [=](std::vector<ParamGroup> g) { return std::make_unique<AdamW>(std::move(g), adamw); }},
  };
}

// Parameters split over two groups (the second with half the lr), on `device`.
struct Trainer {
  std::vector<Var> params;
  std::unique_ptr<Optimizer> opt;
  Trainer(const MakeOptimizer& make, Device device) {
    std::vector<ParamGroup> groups(2);
    for (size_t i = 0; i < kShapes.size(); ++i) {
      params.emplace_back(test::random_tensor(kShapes[i], 10 + i).to(device), true);
      groups[i % 2].params.push_back(params.back());
    }
    opt = make(std::move(groups));
    opt->set_lr(1, opt->lr(0) * 0.5);
  }
  void step(int s) {
    for (size_t i = 0; i < params.size(); ++i) {
      // Parameter 2 gets no gradient at step 3: both backends must skip it.
      if (s == 3 && i == 2) {
        params[i].clear_grad();
        continue;
      }
      params[i].set_grad(test::random_tensor(kShapes[i], 1000 + 17 * s + i).to(params[i].device()));
    }
    opt->step();
  }
};

// float32 on both sides; CUDA contracts multiply-adds that the CPU rounds twice.
constexpr double kRtol = 1e-5, kAtol = 1e-6;

TEST(OptimGpu, MatchesCpuStepByStep) {
  SDLORA_REQUIRE_GPU();
  for (const auto& [name, make] : optimizers()) {
    SCOPED_TRACE(name);
    Trainer cpu(make, Device::cpu()), gpu(make, Device::cuda());
    for (int s = 0; s < kSteps; ++s) {
      cpu.step(s);
      gpu.step(s);
      for (size_t i = 0; i < cpu.params.size(); ++i)
        EXPECT_TRUE(
            test::all_close(gpu.params[i].data(), cpu.params[i].data(), kRtol, kAtol,
                            name + " step " + std::to_string(s) + " param " + std::to_string(i)));
    }
    EXPECT_EQ(gpu.opt->step_count(0, 1), kSteps - 1);  // parameter 2 is group 0's second
  }
}

TEST(OptimGpu, StateMovesBetweenDevices) {
  SDLORA_REQUIRE_GPU();
  for (const auto& [name, make] : optimizers()) {
    SCOPED_TRACE(name);
    Trainer gpu(make, Device::cuda()), cpu(make, Device::cpu());
    for (int s = 0; s < 3; ++s) gpu.step(s);
    // Continue on the CPU from the CUDA run's parameters and state.
    for (size_t i = 0; i < cpu.params.size(); ++i) {
      Tensor p = cpu.params[i].data();
      p.copy_(gpu.params[i].data());
    }
    const OptimizerState state = gpu.opt->state_dict();
    cpu.opt->load_state_dict(state);
    for (const auto& [key, t] : state.tensors) {
      if (key.find(".step") == std::string::npos) {
        EXPECT_TRUE(t.device().is_cuda()) << key;
      }
    }
    // And back: the CPU optimizer's state loads into a CUDA optimizer.
    Trainer gpu2(make, Device::cuda());
    gpu2.opt->load_state_dict(cpu.opt->state_dict());
    for (size_t i = 0; i < gpu2.params.size(); ++i) {
      Tensor p = gpu2.params[i].data();
      p.copy_(cpu.params[i].data());
    }
    for (int s = 3; s < kSteps; ++s) {
      gpu.step(s);
      cpu.step(s);
      gpu2.step(s);
    }
    for (size_t i = 0; i < cpu.params.size(); ++i) {
      EXPECT_TRUE(test::all_close(cpu.params[i].data(), gpu.params[i].data(), kRtol, kAtol,
                                  name + " cpu-resumed param " + std::to_string(i)));
      EXPECT_TRUE(test::all_close(gpu2.params[i].data(), gpu.params[i].data(), kRtol, kAtol,
                                  name + " cuda-resumed param " + std::to_string(i)));
    }
  }
}

TEST(OptimGpu, SchedulerDrivesCudaGroups) {
  SDLORA_REQUIRE_GPU();
  const auto all = optimizers();
  const auto& [name, make] = all[2];  // adam_wd
  Trainer cpu(make, Device::cpu()), gpu(make, Device::cuda());
  CosineAnnealingLR s_cpu(*cpu.opt, 4), s_gpu(*gpu.opt, 4);
  for (int s = 0; s < kSteps; ++s) {
    cpu.step(s);
    gpu.step(s);
    s_cpu.step();
    s_gpu.step();
    EXPECT_EQ(s_gpu.get_last_lr(), s_cpu.get_last_lr());
  }
  for (size_t i = 0; i < cpu.params.size(); ++i)
    EXPECT_TRUE(test::all_close(gpu.params[i].data(), cpu.params[i].data(), kRtol, kAtol,
                                name + " scheduled param " + std::to_string(i)));
}

}  // namespace
}  // namespace sdlora
