// Module: a tree of named parameters, buffers and child modules, with PyTorch's dotted names
// ("blocks.0.attn.qkv.weight"), train/eval, device moves and state dicts whose strict loading
// names every missing, unexpected and mis-shaped tensor in one error.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"
#include "tensor/tensor.h"

namespace sdlora {

// What a load found wrong with a checkpoint: the one report that modules, the classifier and the
// SD-LoRA adapters fill, and one message format for all of them. A non-strict module load
// returns it with what it left out; everything else throws it whole (every problem named at once).
struct LoadReport {
  std::vector<std::string> missing;     // in the model, not in the checkpoint
  std::vector<std::string> unexpected;  // in the checkpoint, not in the model
  std::vector<std::string> misshaped;   // "name (checkpoint [a, b], want [c, d])"
  std::vector<std::string> problems;    // anything else (metadata, inconsistent sizes)

  bool empty() const {
    return missing.empty() && unexpected.empty() && misshaped.empty() && problems.empty();
  }
  // Throws "<what> does not fit <target>" followed by one line per non-empty list; nothing when
  // empty. With strict = false, missing and unexpected names are not errors.
  void throw_if_any(const std::string& what, const std::string& target, bool strict = true) const;
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // Parameters are shared handles; a copied module would alias its original's weights.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Parameters (leaf Vars) of this module and its descendants, in registration order, with
  // dotted names. Each Var is the module's own handle: writing its value changes the module.
  std::vector<std::pair<std::string, Var>> named_parameters() const;
  std::vector<Var> parameters() const;
  // The parameters that require grad, i.e. what an optimizer should update.
  std::vector<Var> trainable_parameters() const;
  // Buffers: state that is saved and moved with the module but never trained.
  std::vector<std::pair<std::string, Var>> named_buffers() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }
  // A parameter or buffer by its dotted name; throws naming it when there is none.
  Var find(const std::string& dotted_name) const;

  // train(true) / eval(): sets the mode of this module and every descendant.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // requires_grad of every parameter (false freezes the module).
  void set_requires_grad(bool requires_grad);
  // Drops the gradient of every parameter.
  void clear_grad();
  // Moves every parameter and buffer to `device` (handles keep their identity).
  void to(Device device);
  // The device of the first parameter (the CPU for a module without parameters).
  Device device() const;

  // Parameters and buffers by dotted name. The tensors share storage with the module: clone them
  // to keep a snapshot while training goes on.
  std::map<std::string, Tensor> state_dict() const;
  // Copies the values in, cast to each parameter's dtype and moved to its device. A tensor whose
  // shape differs from the module's is always an error; strict also rejects missing and
  // unexpected names. The one error lists every problem, so a wrong checkpoint is diagnosed in
  // one run. Nothing is written unless the whole load is valid.
  LoadReport load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

 protected:
  // Registration, from the constructors of derived modules. Names are non-empty, unique within
  // the module and contain no dot. The returned handle is the one the module stores.
  Var register_parameter(const std::string& name, Tensor value, bool requires_grad = true);
  Var register_buffer(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

 private:
  void check_new_name(const std::string& name) const;
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void collect(const std::string& prefix, bool buffers,
               std::vector<std::pair<std::string, Var>>& out) const;

  std::vector<std::pair<std::string, Var>> params_;
  std::vector<std::pair<std::string, Var>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace sdlora
