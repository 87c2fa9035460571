// Learners: what changes in the backbone from task to task. The task loop (task_loop.h) owns the
// data, the classifier, the optimizer, evaluation and metrics; a learner adds and trains its own
// parameters inside the ViT (through the attention adapters) and reports what it kept.
//   sdlora, sdlora-rr, sdlora-kd: nn/sdlora.h's adapters (RR through the rank schedule, KD
//     deciding at the end of every task t >= 1 whether to absorb the new component).
//   seq-lora: one rank-r LoRA pair on q and v trained on every task in turn, built from the same
//     machinery: the SD-LoRA current pair is kept open across tasks, its magnitude fixed at 1 in
//     mode paper (so the update is exactly U D x) and never trained.
//   linear-probe: a frozen backbone; only the classifier learns.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"
#include "cl/config.h"
#include "nn/sdlora.h"
#include "nn/vit.h"
#include "tensor/random.h"

namespace sdlora::cl {

// What a learner reports at the end of a task.
struct TaskEnd {
  int64_t rank = 0;                // rank of the pair trained in the task (0: none)
  bool kd_checked = false;         // SD-LoRA-KD ran its check (tasks >= 1)
  KDDecision kd;                   // the residuals and the decision when checked
  std::vector<double> magnitudes;  // alpha_k after the task (SD-LoRA family)
};

class Learner {
 public:
  virtual ~Learner() = default;
  virtual std::string method() const = 0;
  // Adds (or keeps) the task's trainable parameters; draws initial values from gen.
  virtual void begin_task(int64_t task, Generator& gen) = 0;
  // The backbone-side parameters the optimizer trains in the current task, with the names
  // their checkpoints and error messages use.
  virtual std::vector<std::pair<std::string, Var>> named_trainable_parameters() const = 0;
  std::vector<Var> trainable_parameters() const {
    std::vector<Var> out;
    for (const auto& named : named_trainable_parameters()) out.push_back(named.second);
    return out;
  }
  virtual TaskEnd end_task(int64_t task) = 0;
  // Values the learner keeps between tasks (frozen factors, offsets, magnitudes).
  virtual int64_t stored_parameters() const = 0;
  // After a task: the learner's tensors in the adapter naming of nn/sdlora.h (the trained pair
  // included, as the current pair), and metadata.
  virtual std::map<std::string, Tensor> state_dict() const = 0;
  virtual std::map<std::string, std::string> metadata() const = 0;
  virtual void load_state_dict(const std::map<std::string, Tensor>& tensors,
                               const std::map<std::string, std::string>& metadata) = 0;
  // The SD-LoRA adapters when the learner has them (merging, export); else null.
  virtual const SDLoRA* adapters() const { return nullptr; }
};

// The learner of config.method over `vit` (which must outlive it). Freezes the backbone.
std::unique_ptr<Learner> make_learner(const Config& config, ViT& vit);

}  // namespace sdlora::cl
