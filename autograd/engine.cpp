// backward(): reverse topological walk over the recorded graph, accumulating gradients and
// releasing each node's saved tensors as soon as its backward has run.
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "autograd/node.h"
#include "tensor/ops.h"

namespace sdlora {

namespace {

// A gradient on its way to a node. `owned` says that nobody else holds the tensor, so further
// contributions may be added in place; a borrowed one (an alias of a node's dy, or a tensor
// handed to several inputs) is replaced by a fresh sum instead.
struct PendingGrad {
  Tensor grad;
  bool owned = false;
};

void accumulate(PendingGrad& p, const Tensor& g, bool owned) {
  if (!p.grad.defined()) {
    p.grad = g;
    p.owned = owned;
  } else if (p.owned) {
    add_(p.grad, g);
  } else {
    p.grad = add(p.grad, g);
    p.owned = true;
  }
}

void accumulate_leaf(VarState& leaf, const Tensor& g, bool owned) {
  SDLORA_CHECK(g.dtype() == leaf.data.dtype() && g.device() == leaf.data.device(),
               "backward: gradient ", g.describe(), " does not match the leaf ",
               leaf.data.describe());
  if (!leaf.grad.defined())
    leaf.grad = owned ? g : g.clone();
  else
    add_(leaf.grad, g);
}

// Nodes reachable from root, each after every node that consumes its output (iterative DFS,
// reversed post-order), held by shared pointer so they outlive the edges the walk releases.
std::vector<std::shared_ptr<Node>> reverse_topological(const std::shared_ptr<Node>& root) {
  std::vector<std::shared_ptr<Node>> post;
  std::unordered_set<const Node*> seen{root.get()};
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    Node& node = *stack.back().first;
    const size_t next = stack.back().second++;
    if (next == node.edges().size()) {  // every input done: the node goes after them
      post.push_back(std::move(stack.back().first));
      stack.pop_back();
      continue;
    }
    const std::shared_ptr<Node>& child = node.edges()[next].node;
    if (child && seen.insert(child.get()).second) {
      SDLORA_CHECK(!child->released(), "backward: the graph through ", child->name(),
                   " was already freed by an earlier backward; recompute the forward, or "
                   "detach() the Vars to reuse");
      stack.emplace_back(child, 0);
    }
  }
  return {post.rbegin(), post.rend()};
}

}  // namespace

void backward(const Var& out, const Tensor& dout) {
  SDLORA_CHECK(out.defined(), "backward: the output is an undefined Var");
  SDLORA_CHECK(out.requires_grad(), "backward: ", out.describe(),
               " does not require grad (no input of its graph requires grad, or it was "
               "computed under NoGradGuard)");
  SDLORA_CHECK(dout.defined() && dout.shape() == out.shape() && dout.dtype() == out.dtype() &&
                   dout.device() == out.device(),
               "backward: the seed ", dout.describe(), " should match the output ", out.describe());
  if (out.is_leaf()) {
    accumulate_leaf(*out.shared_state(), dout, false);
    return;
  }
  const std::shared_ptr<Node>& root = out.node();
  SDLORA_CHECK(!root->released(), "backward: the graph of ", out.describe(),
               " was already freed by an earlier backward; recompute the forward");

  std::vector<std::shared_ptr<Node>> order = reverse_topological(root);
  std::unordered_map<const Node*, PendingGrad> pending;
  pending[root.get()] = {dout, false};

  for (std::shared_ptr<Node>& node : order) {
    Tensor dy;
    if (auto it = pending.find(node.get()); it != pending.end()) {
      dy = std::move(it->second.grad);
      pending.erase(it);
    }
    std::vector<Tensor> grads;
    if (dy.defined()) {
      // Pending gradients the node adds into its own (Node::folds): the engine lets go of them.
      for (size_t i = 0; i < node->num_inputs(); ++i) {
        const Edge& e = node->edges()[i];
        if (!e.node || !node->folds(i)) continue;
        if (auto it = pending.find(e.node.get());
            it != pending.end() && it->second.grad.defined()) {
          node->fold(i, std::move(it->second.grad));
          pending.erase(it);
        }
      }
      grads = node->backward(dy);
    }
    std::vector<Edge> edges = node->take_edges();
    node->release_saved();
    for (size_t i = 0; i < grads.size() && i < edges.size(); ++i) {
      const Tensor& g = grads[i];
      const Edge& e = edges[i];
      if (!e.defined() || !g.defined()) continue;
      SDLORA_CHECK(g.shape() == e.shape, "backward: ", node->name(), " returned a gradient ",
                   g.describe(), " for input ", i, " of shape ", shape_str(e.shape));
      // A gradient that shares storage with dy or with another input's gradient is borrowed.
      bool owned = g.storage() != dy.storage();
      for (size_t j = 0; j < grads.size() && owned; ++j)
        if (j != i && grads[j].defined() && grads[j].storage() == g.storage()) owned = false;
      if (e.node)
        accumulate(pending[e.node.get()], g, owned);
      else
        accumulate_leaf(*e.leaf, g, owned);
    }
    // Drop the walk's hold: a node no Var refers to is destroyed here.
    node.reset();
  }
}

void backward(const Var& loss) {
  SDLORA_CHECK(loss.defined(), "backward: the loss is an undefined Var");
  SDLORA_CHECK(loss.numel() == 1, "backward: the loss ", loss.describe(), " has ", loss.numel(),
               " elements; pass the output's gradient for a non-scalar output");
  // Seeded on the loss's device: a fill, no host synchronisation.
  backward(loss, Tensor::full(loss.shape(), 1.0, loss.dtype(), loss.device()));
}

}  // namespace sdlora
