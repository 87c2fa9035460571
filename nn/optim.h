// Optimizers with PyTorch's update rules: SGD (momentum, dampening, Nesterov, weight decay), Adam
// (L2 weight decay) and AdamW (decoupled weight decay), over parameter groups that carry their own
// learning rate and, where wanted, their own value of any other hyperparameter.
//
// Updates are tensor ops, so they run wherever the parameters live; on CUDA a step queues kernels
// only (step counts and hyperparameters stay on the host, nothing is read back). The optimizer's
// state (moment buffers, step counts, hyperparameters) saves to named tensors plus strings and
// restores bit-exactly, so a run can checkpoint and resume.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "autograd/var.h"
#include "tensor/tensor.h"

namespace sdlora {

// Hyperparameters by PyTorch's names: lr, weight_decay, momentum, dampening, nesterov (0 or 1),
// beta1, beta2, eps. Each optimizer knows its own set; any other name is an error.
using Hyperparams = std::map<std::string, double>;

// A set of parameters updated with one set of hyperparameters. Unset values take the optimizer's
// defaults; `overrides` sets any other hyperparameter for this group alone, e.g. momentum 0.5.
struct ParamGroup {
  std::vector<Var> params;
  std::optional<double> lr;
  std::optional<double> weight_decay;
  Hyperparams overrides;
};

// Everything needed to resume: tensors named optim.{group}.{index}.{buffer} (momentum_buffer,
// exp_avg, exp_avg_sq; step as an int64 scalar on the CPU) and strings: optim.type,
// optim.num_groups, optim.{group}.num_params and optim.{group}.{hyperparameter} (printed with 17
// significant digits, so they read back exactly). Fits a safetensors file (tensors + metadata).
struct OptimizerState {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> values;
};

// Numbers in state text: 17 significant digits in the C locale, so they read back exactly. The
// parsers throw naming the key when the text is not a number (a count: a non-negative integer).
std::string format_state_number(double value);
double parse_state_number(const std::string& text, const std::string& key);
int64_t parse_state_count(const std::string& text, const std::string& key);

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient, with recording off. Parameters whose
  // gradient is undefined are skipped, state and step count untouched (as PyTorch skips
  // p.grad is None).
  void step();
  // Zeroes every defined gradient in place (keeping its memory); set_to_none drops them instead,
  // so that parameters no backward reaches are skipped by the next step.
  void zero_grad(bool set_to_none = false);

  const char* type() const { return type_; }  // "sgd", "adam", "adamw"
  size_t num_groups() const { return params_.size(); }
  const std::vector<Var>& params(size_t group) const;
  double lr(size_t group) const { return hyper(group, "lr"); }
  void set_lr(size_t group, double lr) { set_hyper(group, "lr", lr); }
  // Any hyperparameter of a group by name; set_hyper validates as the constructor does.
  double hyper(size_t group, const std::string& name) const;
  void set_hyper(size_t group, const std::string& name, double value);
  const Hyperparams& hyperparams(size_t group) const;
  // Number of updates a parameter has received (0 before its first).
  int64_t step_count(size_t group, size_t index) const;

  // Copies of the state (later steps do not change them).
  OptimizerState state_dict() const;
  // Restores a state_dict() of an optimizer of the same type over parameters of the same groups
  // and shapes; buffers move to each parameter's device. Unknown, missing or mis-shaped entries
  // throw naming the entry; on error this optimizer is left unchanged.
  void load_state_dict(const OptimizerState& state);

 protected:
  // `defaults` lists every hyperparameter the optimizer knows, with its default value.
  Optimizer(const char* type, std::vector<ParamGroup> groups, Hyperparams defaults);

  // Per-parameter state: the step count (host) and named buffers shaped like the parameter.
  struct ParamState {
    int64_t step = 0;
    std::map<std::string, Tensor> buffers;
  };
  // Checks one group's complete hyperparameters; throws naming the group and the value.
  virtual void validate(const Hyperparams& h, size_t group) const;
  // The buffer names this optimizer keeps, and those every stepped parameter must have (for
  // load_state_dict's checks).
  virtual std::vector<std::string> buffer_names() const = 0;
  virtual std::vector<std::string> required_buffers() const { return {}; }
  // Updates one parameter in place; state.step has already been incremented.
  virtual void update(const Hyperparams& h, Tensor& param, const Tensor& grad,
                      ParamState& state) = 0;

 private:
  const char* type_;
  std::vector<std::vector<Var>> params_;
  std::vector<Hyperparams> hypers_;
  std::vector<std::vector<ParamState>> states_;
};

struct SGDOptions {
  double lr = 0.01;  // PyTorch has no default here: set it
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening 0
};

// PyTorch's SGD: g = grad + weight_decay p; with momentum, buf = g on a parameter's first step,
// then buf = momentum buf + (1 - dampening) g, and g = nesterov ? g + momentum buf : buf;
// p -= lr g.
class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, const SGDOptions& options);
  SGD(std::vector<Var> params, const SGDOptions& options);

 protected:
  void validate(const Hyperparams& h, size_t group) const override;
  std::vector<std::string> buffer_names() const override { return {"momentum_buffer"}; }
  void update(const Hyperparams& h, Tensor& param, const Tensor& grad, ParamState& state) override;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  // Adam: L2, added to the gradient; AdamW: decoupled (AdamW::default_options() sets 0.01).
  double weight_decay = 0.0;
};

// PyTorch's Adam: g = grad + weight_decay p; m = beta1 m + (1 - beta1) g;
// v = beta2 v + (1 - beta2) g^2; p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
class Adam : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options = AdamOptions());
  Adam(std::vector<Var> params, const AdamOptions& options = AdamOptions());

 protected:
  Adam(const char* type, std::vector<ParamGroup> groups, const AdamOptions& options);
  void validate(const Hyperparams& h, size_t group) const override;
  std::vector<std::string> buffer_names() const override { return {"exp_avg", "exp_avg_sq"}; }
  std::vector<std::string> required_buffers() const override { return buffer_names(); }
  void update(const Hyperparams& h, Tensor& param, const Tensor& grad, ParamState& state) override;
  // The moment updates and the step, from g (weight decay already applied as the variant wants).
  static void adam_update(const Hyperparams& h, Tensor& param, const Tensor& g, ParamState& state);
};

// PyTorch's AdamW: p *= 1 - lr weight_decay first, then Adam's update on the raw gradient.
class AdamW : public Adam {
 public:
  static AdamOptions default_options() {
    AdamOptions o;
    o.weight_decay = 0.01;
    return o;
  }
  AdamW(std::vector<ParamGroup> groups, const AdamOptions& options = default_options());
  AdamW(std::vector<Var> params, const AdamOptions& options = default_options());

 protected:
  void update(const Hyperparams& h, Tensor& param, const Tensor& grad, ParamState& state) override;
};

}  // namespace sdlora
