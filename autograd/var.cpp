// Var handles, the thread-local recording switch, and the node plumbing shared by every op.
#include "autograd/var.h"

#include "autograd/node.h"
#include "tensor/ops.h"

namespace sdlora {

namespace {
thread_local bool t_grad_enabled = true;
}  // namespace

bool grad_enabled() { return t_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }

// ---- Var

Var::Var(Tensor data, bool requires_grad) : state_(std::make_shared<VarState>()) {
  SDLORA_CHECK(data.defined(), "Var: the tensor is undefined");
  SDLORA_CHECK(!requires_grad || is_floating(data.dtype()),
               "Var: only float tensors can require gradients, got ", data.describe());
  state_->data = std::move(data);
  state_->requires_grad = requires_grad;
}

Var Var::from_node(Tensor data, std::shared_ptr<Node> node) {
  Var v(std::move(data));
  v.state_->requires_grad = true;
  v.state_->node = std::move(node);
  return v;
}

VarState& Var::checked() const {
  SDLORA_CHECK(state_ != nullptr, "Var: use of an undefined Var");
  return *state_;
}

const Tensor& Var::data() const { return checked().data; }

void Var::set_data(Tensor data) {
  VarState& s = checked();
  SDLORA_CHECK(s.node == nullptr,
               "Var::set_data: only leaves can be assigned, this one comes from ", s.node->name());
  SDLORA_CHECK(data.defined(), "Var::set_data: the tensor is undefined");
  if (s.grad.defined() && s.grad.shape() != data.shape()) s.grad = Tensor();
  s.data = std::move(data);
}

const Tensor& Var::grad() const { return checked().grad; }

void Var::set_grad(Tensor grad) {
  VarState& s = checked();
  SDLORA_CHECK(!grad.defined() || grad.shape() == s.data.shape(), "Var::set_grad: gradient ",
               grad.describe(), " does not match the value ", s.data.describe());
  s.grad = std::move(grad);
}

void Var::zero_grad() {
  VarState& s = checked();
  if (s.grad.defined()) fill_(s.grad, 0.0);
}

void Var::clear_grad() { checked().grad = Tensor(); }

bool Var::requires_grad() const { return checked().requires_grad; }

void Var::set_requires_grad(bool requires_grad) {
  VarState& s = checked();
  SDLORA_CHECK(s.node == nullptr,
               "Var::set_requires_grad: only leaves can change it; this Var "
               "comes from ",
               s.node->name(), " (detach() it first)");
  SDLORA_CHECK(!requires_grad || is_floating(s.data.dtype()),
               "Var: only float tensors can require gradients, got ", s.data.describe());
  s.requires_grad = requires_grad;
}

bool Var::is_leaf() const { return checked().node == nullptr; }

const std::shared_ptr<Node>& Var::node() const { return checked().node; }

Var Var::detach() const { return Var(checked().data); }

std::string Var::describe() const {
  if (!state_) return "undefined Var";
  std::string s = state_->data.describe();
  if (state_->requires_grad) s += ", requires grad";
  if (state_->node) s += std::string(", from ") + state_->node->name();
  return s;
}

// ---- nodes

Edge edge_of(const Var& input) {
  Edge e;
  if (!input.requires_grad()) return e;
  if (input.node())
    e.node = input.node();
  else
    e.leaf = input.shared_state();
  e.shape = input.shape();
  return e;
}

std::vector<Edge> Node::take_edges() {
  released_ = true;
  return std::move(edges_);
}

RuleNode::RuleNode(const char* name, std::vector<Edge> edges, std::vector<Rule> rules)
    : Node(name, std::move(edges)), rules_(std::move(rules)) {
  SDLORA_CHECK(rules_.size() == num_inputs(), name, ": ", rules_.size(), " rules for ",
               num_inputs(), " inputs");
  // Rules of inputs that need no gradient are dropped now, with what they saved.
  for (size_t i = 0; i < rules_.size(); ++i)
    if (!needs_grad(i)) rules_[i] = nullptr;
}

std::vector<Tensor> RuleNode::backward(const Tensor& dy) {
  std::vector<Tensor> grads(rules_.size());
  for (size_t i = 0; i < rules_.size(); ++i)
    if (rules_[i]) grads[i] = rules_[i](dy);
  return grads;
}

bool should_record(const std::vector<Var>& inputs) {
  if (!grad_enabled()) return false;
  for (const Var& v : inputs)
    if (v.defined() && v.requires_grad()) return true;
  return false;
}

Var record(const char* name, Tensor out, const std::vector<Var>& inputs, std::vector<Rule> rules) {
  if (!should_record(inputs)) return Var(std::move(out));
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const Var& v : inputs) edges.push_back(edge_of(v));
  return Var::from_node(std::move(out),
                        std::make_shared<RuleNode>(name, std::move(edges), std::move(rules)));
}

// ---- broadcasting adjoints

Tensor sum_to_shape(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t nd = static_cast<int64_t>(shape.size());
  SDLORA_CHECK(g.ndim() >= nd, "sum_to_shape: ", g.describe(), " cannot be reduced to ",
               shape_str(shape));
  Tensor t = g;
  // Dimensions that broadcasting prepended: one reduction over their product.
  const int64_t lead = g.ndim() - nd;
  if (lead > 0) {
    const Shape rest(g.shape().begin() + lead, g.shape().end());
    t = sum(t.reshape({-1, shape_numel(rest)}), 0).reshape(rest);
  }
  // Dimensions stretched from 1.
  for (int64_t d = 0; d < nd; ++d) {
    const int64_t want = shape[static_cast<size_t>(d)];
    if (t.size(d) == want) continue;
    SDLORA_CHECK(want == 1, "sum_to_shape: ", g.describe(), " cannot be reduced to ",
                 shape_str(shape));
    t = sum(t, d, /*keepdim=*/true);
  }
  return t;
}

Tensor broadcast_tensor(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  Tensor out = Tensor::zeros(shape, g.dtype(), g.device());
  add_(out, g);
  return out;
}

}  // namespace sdlora
