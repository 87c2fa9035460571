// Var: a tensor that remembers how it was computed, so that backward() can send gradients to
// the leaves that require them. Gradient recording can be switched off per thread (NoGradGuard).
#pragma once

#include <memory>
#include <string>

#include "tensor/tensor.h"

namespace sdlora {

class Node;

// The shared state behind Var handles. Leaves have no node; a Var computed by a recorded op
// points at the node that produced it.
struct VarState {
  Tensor data;
  Tensor grad;  // leaves only: the accumulated gradient (undefined until a backward reaches it)
  bool requires_grad = false;
  std::shared_ptr<Node> node;
};

// A cheap handle: copies share one state (value, gradient, history).
class Var {
 public:
  Var() = default;  // undefined: defined() is false
  // A leaf. requires_grad = true makes backward() accumulate into grad(); it needs a float tensor.
  explicit Var(Tensor data, bool requires_grad = false);
  // The output of a recorded op (used by the op implementations).
  static Var from_node(Tensor data, std::shared_ptr<Node> node);

  bool defined() const { return state_ != nullptr; }
  // The value. Tensors are handles: in-place tensor ops on data() (optimizer steps) change the
  // Var's value for every holder.
  const Tensor& data() const;
  // Replaces the value of a leaf (loading weights); the gradient is kept if the shape matches.
  void set_data(Tensor data);

  // The accumulated gradient of a leaf; undefined before the first backward that reaches it.
  // Non-leaf Vars do not keep gradients.
  const Tensor& grad() const;
  void set_grad(Tensor grad);
  // Fills grad() with zeros in place, keeping its memory (no-op when undefined).
  void zero_grad();
  // Drops grad(), returning its memory.
  void clear_grad();

  bool requires_grad() const;
  // Leaves only: whether backward() accumulates into this Var.
  void set_requires_grad(bool requires_grad);
  bool is_leaf() const;  // no producing node
  const std::shared_ptr<Node>& node() const;

  // The same value (shared storage) without history: a leaf that requires no gradient.
  Var detach() const;

  const Shape& shape() const { return data().shape(); }
  int64_t size(int64_t d) const { return data().size(d); }
  int64_t ndim() const { return data().ndim(); }
  int64_t numel() const { return data().numel(); }
  DType dtype() const { return data().dtype(); }
  Device device() const { return data().device(); }
  // "float32[2, 3] on cpu, requires grad, from linear", for error messages.
  std::string describe() const;

  // Identity of the shared state (two handles to one Var compare equal).
  const VarState* state() const { return state_.get(); }
  const std::shared_ptr<VarState>& shared_state() const { return state_; }

 private:
  VarState& checked() const;
  std::shared_ptr<VarState> state_;
};

// Whether ops on this thread record graph nodes (true unless a NoGradGuard is alive).
bool grad_enabled();

// Turns recording off on this thread for the guard's lifetime (evaluation, optimizer steps).
// Thread-local: other threads keep their own setting. Guards nest.
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Reverse-mode differentiation from `loss` (one element): seeds its gradient with one and walks
// the graph in reverse topological order. Every leaf that requires grad and that the loss
// depends on gets its gradient ACCUMULATED (+=) into grad(); a Var used several times receives
// every contribution. Each node's saved tensors and references are released as soon as its
// backward has run, so the graph can be walked once: a second backward through the same nodes
// throws (recompute the forward, or detach() what should be reused).
void backward(const Var& loss);
// The same with an explicit seed dloss (the shape, dtype and device of out), for outputs with
// more than one element.
void backward(const Var& out, const Tensor& dout);

}  // namespace sdlora
