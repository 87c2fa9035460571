// Learning-rate schedulers with PyTorch's semantics (ConstantLR, MultiStepLR, CosineAnnealingLR),
// stepped once per epoch by the caller. Each sets every parameter group's lr from that group's
// base lr (its lr when the scheduler was made) by the closed form of PyTorch's chainable
// recursion, so the sequence matches PyTorch's and a restored epoch counter resumes it exactly.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nn/optim.h"

namespace sdlora {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // Advances one epoch and sets each group's lr (call after the epoch's optimizer steps).
  void step();
  const char* type() const { return type_; }  // "constant", "multistep", "cosine"
  int64_t last_epoch() const { return last_epoch_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  // The lrs this scheduler last set, one per group.
  const std::vector<double>& get_last_lr() const { return last_lrs_; }
  // The closed form: the lr at `epoch` for a group whose base lr is base_lr.
  virtual double lr_at(double base_lr, int64_t epoch) const = 0;

  // sched.type, sched.last_epoch, sched.{group}.base_lr and the settings as sched.{name}
  // (numbers with 17 significant digits, so they read back exactly).
  std::map<std::string, std::string> state_dict() const;
  // Restores the epoch and base lrs and sets the groups' lrs. The state must come from a scheduler
  // of the same type and settings over as many groups; entries outside "sched." are ignored, and
  // missing, unexpected or different ones throw naming the entry.
  void load_state_dict(const std::map<std::string, std::string>& state);

 protected:
  // Takes each group's current lr as its base lr. The optimizer must outlive the scheduler.
  // Derived constructors finish with start(), PyTorch's initial step to epoch 0.
  LRScheduler(const char* type, Optimizer& optimizer);
  void start();
  // The settings that define the schedule, as printable text (checked on load).
  virtual std::map<std::string, std::string> settings() const = 0;

 private:
  void apply();

  const char* type_;
  Optimizer& optimizer_;
  int64_t last_epoch_ = -1;
  std::vector<double> base_lrs_;
  std::vector<double> last_lrs_;
};

// lr = base factor for epochs before total_iters, base from then on. The defaults (factor 1)
// keep the lr constant, which is what "constant" means in the configs; PyTorch's own defaults
// are factor 1/3, total_iters 5.
class ConstantLR : public LRScheduler {
 public:
  explicit ConstantLR(Optimizer& optimizer, double factor = 1.0, int64_t total_iters = 0);
  double lr_at(double base_lr, int64_t epoch) const override;

 protected:
  std::map<std::string, std::string> settings() const override;

 private:
  double factor_;
  int64_t total_iters_;
};

// lr = base gamma^k, k the number of milestones <= epoch (a repeated milestone counts each time).
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma = 0.1);
  double lr_at(double base_lr, int64_t epoch) const override;

 protected:
  std::map<std::string, std::string> settings() const override;

 private:
  std::vector<int64_t> milestones_;  // sorted
  double gamma_;
};

// lr = eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2; past T_max it rises again
// with period 2 T_max, as PyTorch's recursion does.
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min = 0.0);
  double lr_at(double base_lr, int64_t epoch) const override;

 protected:
  std::map<std::string, std::string> settings() const override;

 private:
  int64_t t_max_;
  double eta_min_;
};

}  // namespace sdlora
