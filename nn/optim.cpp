// Optimizers: the shared group, step and state machinery, then SGD, Adam and AdamW. The update
// rules follow torch.optim's single-tensor code op for op (including the order in which scalar
// factors are applied), so float32 results agree with PyTorch's to rounding.
#include "nn/optim.h"

#include <algorithm>
#include <cmath>
#include <locale>
#include <set>
#include <sstream>

#include "tensor/ops.h"

namespace sdlora {
namespace {

std::string known_names(const Hyperparams& h) {
  std::string out;
  for (const auto& [name, value] : h) out += (out.empty() ? "" : ", ") + name;
  return out;
}

constexpr const char* kPrefix = "optim.";

bool in_namespace(const std::string& key) { return key.rfind(kPrefix, 0) == 0; }

// "optim.{g}.{i}.{buffer}" -> g, i, buffer; false when the key does not have that form.
bool parse_tensor_key(const std::string& key, size_t& g, size_t& i, std::string& buffer) {
  const std::string rest = key.substr(std::string(kPrefix).size());
  const size_t d1 = rest.find('.');
  if (d1 == std::string::npos) return false;
  const size_t d2 = rest.find('.', d1 + 1);
  if (d2 == std::string::npos) return false;
  const std::string gs = rest.substr(0, d1), is = rest.substr(d1 + 1, d2 - d1 - 1);
  auto all_digits = [](const std::string& s) {
    return !s.empty() && s.size() < 10 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  if (!all_digits(gs) || !all_digits(is)) return false;
  g = std::stoul(gs);
  i = std::stoul(is);
  buffer = rest.substr(d2 + 1);
  return !buffer.empty();
}

void check_finite(const Hyperparams& h, size_t group, const char* type) {
  for (const auto& [name, value] : h)
    SDLORA_CHECK(std::isfinite(value), type, ": ", name, " = ", value, " in group ", group,
                 " is not finite");
}

void check_at_least(const Hyperparams& h, const char* name, double lo, size_t group,
                    const char* type) {
  const double v = h.at(name);
  SDLORA_CHECK(v >= lo, type, ": ", name, " = ", v, " in group ", group, " must be >= ", lo);
}

}  // namespace

std::string format_state_number(double value) {
  std::ostringstream os;
  os.imbue(std::locale::classic());
  os.precision(17);
  os << value;
  return os.str();
}

double parse_state_number(const std::string& text, const std::string& key) {
  std::istringstream is(text);
  is.imbue(std::locale::classic());
  double v = 0.0;
  is >> v;
  SDLORA_CHECK(!is.fail() && is.eof(), "state entry ", key, " = '", text, "' is not a number");
  return v;
}

int64_t parse_state_count(const std::string& text, const std::string& key) {
  std::istringstream is(text);
  is.imbue(std::locale::classic());
  int64_t v = 0;
  is >> v;
  SDLORA_CHECK(!is.fail() && is.eof() && v >= 0, "state entry ", key, " = '", text,
               "' is not a count");
  return v;
}

// ---- Optimizer

Optimizer::Optimizer(const char* type, std::vector<ParamGroup> groups, Hyperparams defaults)
    : type_(type) {
  SDLORA_CHECK(!groups.empty(), type_, ": no parameter groups");
  std::set<const VarState*> seen;
  for (size_t g = 0; g < groups.size(); ++g) {
    ParamGroup& group = groups[g];
    for (size_t i = 0; i < group.params.size(); ++i) {
      const Var& p = group.params[i];
      SDLORA_CHECK(p.defined(), type_, ": parameter ", i, " of group ", g, " is undefined");
      SDLORA_CHECK(p.is_leaf(), type_, ": parameter ", i, " of group ", g,
                   " is not a leaf: ", p.describe());
      SDLORA_CHECK(seen.insert(p.state()).second, type_, ": parameter ", i, " of group ", g,
                   " appears more than once");
    }
    Hyperparams h = defaults;
    if (group.lr) h["lr"] = *group.lr;
    if (group.weight_decay) h["weight_decay"] = *group.weight_decay;
    for (const auto& [name, value] : group.overrides) {
      SDLORA_CHECK(h.count(name), type_, ": unknown hyperparameter '", name, "' in group ", g,
                   " (known: ", known_names(defaults), ")");
      h[name] = value;
    }
    params_.push_back(std::move(group.params));
    hypers_.push_back(std::move(h));
    states_.emplace_back(params_.back().size());
  }
}

const std::vector<Var>& Optimizer::params(size_t group) const {
  SDLORA_CHECK(group < params_.size(), type_, ": group ", group, " out of range (", params_.size(),
               " groups)");
  return params_[group];
}

const Hyperparams& Optimizer::hyperparams(size_t group) const {
  SDLORA_CHECK(group < hypers_.size(), type_, ": group ", group, " out of range (", hypers_.size(),
               " groups)");
  return hypers_[group];
}

double Optimizer::hyper(size_t group, const std::string& name) const {
  const Hyperparams& h = hyperparams(group);
  const auto it = h.find(name);
  SDLORA_CHECK(it != h.end(), type_, ": unknown hyperparameter '", name,
               "' (known: ", known_names(h), ")");
  return it->second;
}

void Optimizer::set_hyper(size_t group, const std::string& name, double value) {
  (void)hyper(group, name);  // range and name checks
  Hyperparams h = hypers_[group];
  h[name] = value;
  validate(h, group);
  hypers_[group] = std::move(h);
}

int64_t Optimizer::step_count(size_t group, size_t index) const {
  const std::vector<Var>& ps = params(group);
  SDLORA_CHECK(index < ps.size(), type_, ": parameter ", index, " of group ", group,
               " out of range (", ps.size(), " parameters)");
  return states_[group][index].step;
}

void Optimizer::validate(const Hyperparams& h, size_t group) const {
  check_finite(h, group, type_);
  check_at_least(h, "lr", 0.0, group, type_);
  check_at_least(h, "weight_decay", 0.0, group, type_);
}

void Optimizer::step() {
  NoGradGuard no_grad;
  for (size_t g = 0; g < params_.size(); ++g) {
    for (size_t i = 0; i < params_[g].size(); ++i) {
      const Var& var = params_[g][i];
      const Tensor& grad = var.grad();
      if (!grad.defined()) continue;
      Tensor param = var.data();  // a handle: in-place ops update the parameter itself
      SDLORA_CHECK(grad.shape() == param.shape() && grad.device() == param.device() &&
                       grad.dtype() == param.dtype(),
                   type_, ": the gradient ", grad.describe(), " of parameter ", i, " of group ", g,
                   " does not match the parameter ", param.describe());
      ParamState& state = states_[g][i];
      ++state.step;
      update(hypers_[g], param, grad, state);
    }
  }
}

void Optimizer::zero_grad(bool set_to_none) {
  for (auto& group : params_) {
    for (Var& p : group) {
      if (set_to_none)
        p.clear_grad();
      else
        p.zero_grad();
    }
  }
}

OptimizerState Optimizer::state_dict() const {
  OptimizerState out;
  const std::string pre = kPrefix;
  out.values[pre + "type"] = type_;
  out.values[pre + "num_groups"] = std::to_string(params_.size());
  for (size_t g = 0; g < params_.size(); ++g) {
    const std::string gp = pre + std::to_string(g) + ".";
    out.values[gp + "num_params"] = std::to_string(params_[g].size());
    for (const auto& [name, value] : hypers_[g]) out.values[gp + name] = format_state_number(value);
    for (size_t i = 0; i < params_[g].size(); ++i) {
      const ParamState& st = states_[g][i];
      if (st.step == 0) continue;
      const std::string ip = gp + std::to_string(i) + ".";
      out.tensors[ip + "step"] = Tensor::scalar<int64_t>(st.step);
      for (const auto& [name, buf] : st.buffers) out.tensors[ip + name] = buf.clone();
    }
  }
  return out;
}

void Optimizer::load_state_dict(const OptimizerState& state) {
  const std::string pre = kPrefix;
  auto value = [&](const std::string& key) -> const std::string& {
    const auto it = state.values.find(key);
    SDLORA_CHECK(it != state.values.end(), type_, ": optimizer state has no entry ", key);
    return it->second;
  };
  SDLORA_CHECK(value(pre + "type") == type_, type_, ": optimizer state is for ",
               value(pre + "type"));
  const int64_t num_groups = parse_state_count(value(pre + "num_groups"), pre + "num_groups");
  SDLORA_CHECK(num_groups == static_cast<int64_t>(params_.size()), type_, ": optimizer state has ",
               num_groups, " groups, this optimizer ", params_.size());

  // Hyperparameters: every known one present, nothing else in the namespace.
  std::set<std::string> expected{pre + "type", pre + "num_groups"};
  std::vector<Hyperparams> hypers = hypers_;
  for (size_t g = 0; g < params_.size(); ++g) {
    const std::string gp = pre + std::to_string(g) + ".";
    const std::string np = gp + "num_params";
    expected.insert(np);
    const int64_t n = parse_state_count(value(np), np);
    SDLORA_CHECK(n == static_cast<int64_t>(params_[g].size()), type_, ": optimizer state has ", n,
                 " parameters in group ", g, ", this optimizer ", params_[g].size());
    for (auto& [name, v] : hypers[g]) {
      expected.insert(gp + name);
      v = parse_state_number(value(gp + name), gp + name);
    }
    validate(hypers[g], g);
  }
  for (const auto& [key, text] : state.values)
    SDLORA_CHECK(!in_namespace(key) || expected.count(key), type_,
                 ": unexpected optimizer state entry ", key);

  // Tensors: step counts and buffers, checked against each parameter.
  std::vector<std::vector<ParamState>> states(params_.size());
  for (size_t g = 0; g < params_.size(); ++g) states[g].resize(params_[g].size());
  const std::vector<std::string> allowed = buffer_names();
  for (const auto& [key, t] : state.tensors) {
    if (!in_namespace(key)) continue;
    size_t g = 0, i = 0;
    std::string name;
    SDLORA_CHECK(parse_tensor_key(key, g, i, name) && g < params_.size() && i < params_[g].size(),
                 type_, ": unexpected optimizer state tensor ", key);
    SDLORA_CHECK(t.defined(), type_, ": optimizer state tensor ", key, " is undefined");
    const Tensor& p = params_[g][i].data();
    if (name == "step") {
      SDLORA_CHECK(t.dtype() == DType::kInt64 && t.numel() == 1, type_, ": ", key,
                   " must be one int64, got ", t.describe());
      const int64_t step = t.to(Device::cpu()).to_vector<int64_t>()[0];
      SDLORA_CHECK(step > 0, type_, ": ", key, " = ", step, " must be positive");
      states[g][i].step = step;
      continue;
    }
    SDLORA_CHECK(std::find(allowed.begin(), allowed.end(), name) != allowed.end(), type_,
                 ": unexpected optimizer state tensor ", key);
    SDLORA_CHECK(t.shape() == p.shape() && t.dtype() == p.dtype(), type_, ": ", key, " is ",
                 t.describe(), ", the parameter ", p.describe());
    states[g][i].buffers[name] = t.device() == p.device() ? t.clone() : t.to(p.device());
  }
  const std::vector<std::string> required = required_buffers();
  for (size_t g = 0; g < states.size(); ++g) {
    for (size_t i = 0; i < states[g].size(); ++i) {
      const ParamState& st = states[g][i];
      const std::string ip = pre + std::to_string(g) + "." + std::to_string(i) + ".";
      SDLORA_CHECK(st.step > 0 || st.buffers.empty(), type_, ": optimizer state has buffers for ",
                   ip, "* but no ", ip, "step");
      if (st.step == 0) continue;
      for (const std::string& name : required)
        SDLORA_CHECK(st.buffers.count(name), type_, ": optimizer state has no entry ", ip + name);
    }
  }
  hypers_ = std::move(hypers);
  states_ = std::move(states);
}

// ---- SGD

namespace {

Hyperparams sgd_defaults(const SGDOptions& o) {
  return {{"lr", o.lr},
          {"momentum", o.momentum},
          {"dampening", o.dampening},
          {"weight_decay", o.weight_decay},
          {"nesterov", o.nesterov ? 1.0 : 0.0}};
}

Hyperparams adam_defaults(const AdamOptions& o) {
  return {{"lr", o.lr},
          {"beta1", o.beta1},
          {"beta2", o.beta2},
          {"eps", o.eps},
          {"weight_decay", o.weight_decay}};
}

std::vector<ParamGroup> one_group(std::vector<Var> params) {
  std::vector<ParamGroup> groups(1);
  groups[0].params = std::move(params);
  return groups;
}

}  // namespace

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& options)
    : Optimizer("sgd", std::move(groups), sgd_defaults(options)) {
  for (size_t g = 0; g < num_groups(); ++g) validate(hyperparams(g), g);
}

SGD::SGD(std::vector<Var> params, const SGDOptions& options)
    : SGD(one_group(std::move(params)), options) {}

void SGD::validate(const Hyperparams& h, size_t group) const {
  Optimizer::validate(h, group);
  check_at_least(h, "momentum", 0.0, group, "sgd");
  const double nesterov = h.at("nesterov");
  SDLORA_CHECK(nesterov == 0.0 || nesterov == 1.0, "sgd: nesterov = ", nesterov, " in group ",
               group, " must be 0 or 1");
  SDLORA_CHECK(nesterov == 0.0 || (h.at("momentum") > 0.0 && h.at("dampening") == 0.0),
               "sgd: Nesterov momentum in group ", group, " needs momentum > 0 and dampening 0");
}

void SGD::update(const Hyperparams& h, Tensor& param, const Tensor& grad, ParamState& state) {
  const double lr = h.at("lr"), momentum = h.at("momentum"), wd = h.at("weight_decay");
  Tensor d = grad;  // never written in place: it may be the gradient itself
  if (wd != 0.0) d = add(grad, mul(param, wd));
  if (momentum != 0.0) {
    auto it = state.buffers.find("momentum_buffer");
    if (it == state.buffers.end()) {
      it = state.buffers.emplace("momentum_buffer", d.clone()).first;
    } else {
      mul_(it->second, momentum);
      add_(it->second, d, 1.0 - h.at("dampening"));
    }
    const Tensor& buf = it->second;
    d = h.at("nesterov") != 0.0 ? add(d, mul(buf, momentum)) : buf;
  }
  add_(param, d, -lr);
}

// ---- Adam and AdamW

Adam::Adam(const char* type, std::vector<ParamGroup> groups, const AdamOptions& options)
    : Optimizer(type, std::move(groups), adam_defaults(options)) {
  for (size_t g = 0; g < num_groups(); ++g) validate(hyperparams(g), g);
}

Adam::Adam(std::vector<ParamGroup> groups, const AdamOptions& options)
    : Adam("adam", std::move(groups), options) {}

Adam::Adam(std::vector<Var> params, const AdamOptions& options)
    : Adam("adam", one_group(std::move(params)), options) {}

void Adam::validate(const Hyperparams& h, size_t group) const {
  Optimizer::validate(h, group);
  check_at_least(h, "eps", 0.0, group, type());
  for (const char* name : {"beta1", "beta2"}) {
    const double b = h.at(name);
    SDLORA_CHECK(b >= 0.0 && b < 1.0, type(), ": ", name, " = ", b, " in group ", group,
                 " must be in [0, 1)");
  }
}

void Adam::adam_update(const Hyperparams& h, Tensor& param, const Tensor& g, ParamState& state) {
  const double lr = h.at("lr"), beta1 = h.at("beta1"), beta2 = h.at("beta2"), eps = h.at("eps");
  if (!state.buffers.count("exp_avg")) {
    state.buffers["exp_avg"] = Tensor::zeros(param.shape(), param.dtype(), param.device());
    state.buffers["exp_avg_sq"] = Tensor::zeros(param.shape(), param.dtype(), param.device());
  }
  Tensor& m = state.buffers.at("exp_avg");
  Tensor& v = state.buffers.at("exp_avg_sq");
  // m = beta1 m + (1 - beta1) g;  v = beta2 v + ((1 - beta2) g) g   (PyTorch's addcmul order)
  mul_(m, beta1);
  add_(m, g, 1.0 - beta1);
  mul_(v, beta2);
  add_(v, mul(mul(g, 1.0 - beta2), g));
  const double t = static_cast<double>(state.step);
  const double bias_correction1 = 1.0 - std::pow(beta1, t);
  const double bias_correction2 = 1.0 - std::pow(beta2, t);
  const double step_size = lr / bias_correction1;
  // denom = sqrt(v) / sqrt(bc2) + eps;  p += (-step_size m) / denom   (PyTorch's addcdiv order)
  const Tensor denom = add(div(sqrt(v), std::sqrt(bias_correction2)), eps);
  add_(param, div(mul(m, -step_size), denom));
}

void Adam::update(const Hyperparams& h, Tensor& param, const Tensor& grad, ParamState& state) {
  const double wd = h.at("weight_decay");
  adam_update(h, param, wd != 0.0 ? add(grad, mul(param, wd)) : grad, state);
}

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamOptions& options)
    : Adam("adamw", std::move(groups), options) {}

AdamW::AdamW(std::vector<Var> params, const AdamOptions& options)
    : Adam("adamw", one_group(std::move(params)), options) {}

void AdamW::update(const Hyperparams& h, Tensor& param, const Tensor& grad, ParamState& state) {
  const double wd = h.at("weight_decay");
  if (wd != 0.0) mul_(param, 1.0 - h.at("lr") * wd);
  adam_update(h, param, grad, state);
}

}  // namespace sdlora
