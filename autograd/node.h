// Graph nodes: one per recorded differentiable op. A node keeps edges to the inputs that need
// gradients and the tensors its backward needs, and turns the output's gradient into the
// inputs' gradients, which the engine ACCUMULATES (+=) into theirs.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/var.h"

namespace sdlora {

// Where one input's gradient goes: the node that produced it, or the leaf itself. Inputs that
// need no gradient have an empty edge.
struct Edge {
  std::shared_ptr<Node> node;      // producer of a non-leaf input
  std::shared_ptr<VarState> leaf;  // a leaf input with requires_grad
  Shape shape;                     // the input's shape; its gradient must have it
  bool defined() const { return node != nullptr || leaf != nullptr; }
};

// The edge of an input: empty when it needs no gradient.
Edge edge_of(const Var& input);

class Node {
 public:
  Node(const char* name, std::vector<Edge> edges) : name_(name), edges_(std::move(edges)) {}
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Given dy, the gradient of the output, returns one gradient per input (the input's shape,
  // dtype and device), or an undefined tensor where needs_grad(i) is false. The engine adds
  // (+=) each into the input's gradient, so a returned tensor may alias dy.
  virtual std::vector<Tensor> backward(const Tensor& dy) = 0;
  // Frees everything backward needed; called by the engine right after backward.
  virtual void release_saved() = 0;

  // Folding: a node may add the gradient its input has already received from other consumers
  // into its own in one pass (a pre-norm LayerNorm adds the residual stream's gradient to its dx).
  // For an input where folds(i) is true and a gradient is pending, the engine hands that gradient
  // over with fold(i, pending) before backward() and no longer holds it; backward() must then
  // return pending + its own gradient for input i (a fresh tensor: `pending` may be shared).
  virtual bool folds(size_t /*input*/) const { return false; }
  virtual void fold(size_t /*input*/, Tensor /*pending*/) {}

  const char* name() const { return name_; }
  size_t num_inputs() const { return edges_.size(); }
  bool needs_grad(size_t i) const { return edges_[i].defined(); }
  const std::vector<Edge>& edges() const { return edges_; }

  // Engine use: hands over the edges (the node lets go of its inputs) and marks it released.
  std::vector<Edge> take_edges();
  bool released() const { return released_; }

 private:
  const char* name_;
  std::vector<Edge> edges_;
  bool released_ = false;
};

// One input's derivative rule: the output's gradient -> this input's gradient. Saved tensors
// live in the lambda's captures, so a rule dropped (its input needs no gradient) or released
// frees what it saved.
using Rule = std::function<Tensor(const Tensor& dy)>;

// A node made of one rule per input: how the primitive ops are written (functions.cpp).
class RuleNode final : public Node {
 public:
  RuleNode(const char* name, std::vector<Edge> edges, std::vector<Rule> rules);
  std::vector<Tensor> backward(const Tensor& dy) override;
  void release_saved() override { rules_.clear(); }

 private:
  std::vector<Rule> rules_;
};

// Whether an op on these inputs records a node: recording is on and some input requires grad.
bool should_record(const std::vector<Var>& inputs);

// The output Var of an op: with a RuleNode over inputs (rules[i] for inputs[i]) when recording,
// else a plain leaf, in which case the rules and what they saved are dropped at once.
Var record(const char* name, Tensor out, const std::vector<Var>& inputs, std::vector<Rule> rules);

// The output Var of a fused op with its own Node subclass (created only when recording).
template <typename N, typename... Args>
Var record_node(Tensor out, const std::vector<Var>& inputs, Args&&... args) {
  if (!should_record(inputs)) return Var(std::move(out));
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const Var& v : inputs) edges.push_back(edge_of(v));
  return Var::from_node(std::move(out),
                        std::make_shared<N>(std::move(edges), std::forward<Args>(args)...));
}

// Mixed precision: an op on a float32 and a bfloat16 operand computes on bfloat16 operands
// (float32 accumulation inside the kernels) and returns bfloat16; each input's gradient comes
// back in that input's own dtype, written so by the kernel (a float32 weight gradient from
// bfloat16 activations is a bfloat16-input product with a float32 output). compute_dtype is
// the operands' dtype when they agree, bfloat16 for a float32 / bfloat16 pair, else it throws.
DType compute_dtype(const Tensor& a, const Tensor& b);
Tensor as_dtype(const Tensor& t, DType dtype);  // t itself when it has that dtype, else a cast

// The adjoint of numpy broadcasting: sums g over the dimensions that broadcasting added or
// stretched, so the result has `shape`. Returns g itself when the shapes already match.
Tensor sum_to_shape(const Tensor& g, const Shape& shape);

// g (broadcastable to shape) materialised at `shape`. tensor/ has no expand, so this is zeros
// plus an in-place broadcast add.
Tensor broadcast_tensor(const Tensor& g, const Shape& shape);

}  // namespace sdlora
