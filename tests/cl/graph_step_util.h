// Shared by the graph-step tests (CPU twin and CUDA): task 1 of a tiny SD-LoRA stream (one frozen
// component and the current pair, the growing head), stepped by cl::StepRunner over fixed
// batches, the last one smaller.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cl/head.h"
#include "cl/learner.h"
#include "cl/train_step.h"
#include "nn/vit.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tests/common/tiny_vit.h"

namespace sdlora::cl::test {

struct GraphStepRun {
  std::vector<double> losses;  // every batch's, read back
  std::vector<Tensor> params;  // the trainable tensors after the last step (CPU copies)
  std::vector<std::string> log;
  bool replayed = false;
};

// `with_item` makes the loss closure read a value back to the host (what a graph cannot hold).
inline GraphStepRun run_graph_steps(Device device, GraphMode mode, bool with_item = false,
                                    int64_t batches = 5) {
  Generator gen(7);
  const ViTConfig vc = sdlora::test::tiny_vit_config(0);
  ViT vit(vc, device);
  vit.init_weights(gen);
  Config cfg;
  cfg.method = "sdlora";
  cfg.rank = 2;
  cfg.optimizer = "sgd";
  cfg.momentum = 0.9;
  cfg.weight_decay = 0.0;
  const std::unique_ptr<Learner> learner = make_learner(cfg, vit);
  GrowingHead head(vc.embed_dim, device);
  for (int64_t k = 0; k <= 1; ++k) {
    head.grow(3, gen);
    learner->begin_task(k, gen);
    if (k == 0) learner->end_task(k);
  }
  std::vector<Var> trainable = learner->trainable_parameters();
  for (const Var& v : head.trainable_parameters()) trainable.push_back(v);
  const std::unique_ptr<Optimizer> opt = make_optimizer(cfg, trainable, 0.05);

  GraphStepRun r;
  LossWindow window(device, 1000);
  StepRunner runner(
      *opt, window,
      [&](const data::Batch& b) {
        if (with_item) (void)sum(b.images).item();
        return task_loss(vit, head, b.images, b.labels, 3, 6);
      },
      mode, [&](const std::string& line) { r.log.push_back(line); });
  for (int64_t i = 0; i < batches; ++i) {
    const int64_t n = i + 1 == batches ? 3 : 6;  // the last batch smaller: an eager step
    data::Batch b;
    b.index = i;
    b.images = gen.uniform({n, 3, 8, 8}, 0.0, 1.0, DType::kFloat32, device);
    std::vector<int64_t> labels;
    for (int64_t j = 0; j < n; ++j) labels.push_back(3 + (i + j) % 3);
    b.labels = Tensor::from_vector<int64_t>(labels, {n}, device);
    runner.step(b);
  }
  r.replayed = runner.replaying();
  window.read("graph step test");
  r.losses = window.batch_losses();
  for (const Var& v : trainable) r.params.push_back(v.data().to(Device::cpu()).clone());
  return r;
}

}  // namespace sdlora::cl::test
