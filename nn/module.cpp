// Module: registration, traversal with dotted names, device moves and strict state-dict loading.
#include "nn/module.h"

#include <set>
#include <sstream>

#include "tensor/ops.h"

namespace sdlora {

void Module::check_new_name(const std::string& name) const {
  SDLORA_CHECK(!name.empty() && name.find('.') == std::string::npos, "module member name '", name,
               "' must be non-empty and contain no '.'");
  auto taken = [&](const auto& list) {
    for (const auto& entry : list)
      if (entry.first == name) return true;
    return false;
  };
  SDLORA_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), "module member name '",
               name, "' is registered twice");
}

Var Module::register_parameter(const std::string& name, Tensor value, bool requires_grad) {
  check_new_name(name);
  SDLORA_CHECK(value.defined(), "parameter '", name, "' has no value");
  Var v(std::move(value), requires_grad);
  params_.emplace_back(name, v);
  return v;
}

Var Module::register_buffer(const std::string& name, Tensor value) {
  check_new_name(name);
  SDLORA_CHECK(value.defined(), "buffer '", name, "' has no value");
  Var v(std::move(value), false);
  buffers_.emplace_back(name, v);
  return v;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name);
  SDLORA_CHECK(module != nullptr, "child module '", name, "' is null");
  children_.emplace_back(name, std::move(module));
}

void Module::collect(const std::string& prefix, bool buffers,
                     std::vector<std::pair<std::string, Var>>& out) const {
  for (const auto& [name, v] : buffers ? buffers_ : params_) out.emplace_back(prefix + name, v);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", buffers, out);
}

std::vector<std::pair<std::string, Var>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Var>> out;
  collect("", false, out);
  return out;
}

std::vector<std::pair<std::string, Var>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Var>> out;
  collect("", true, out);
  return out;
}

std::vector<Var> Module::parameters() const {
  std::vector<Var> out;
  for (auto& [name, v] : named_parameters()) out.push_back(v);
  return out;
}

std::vector<Var> Module::trainable_parameters() const {
  std::vector<Var> out;
  for (auto& [name, v] : named_parameters())
    if (v.requires_grad()) out.push_back(v);
  return out;
}

Var Module::find(const std::string& dotted_name) const {
  for (auto& list : {named_parameters(), named_buffers()})
    for (auto& [name, v] : list)
      if (name == dotted_name) return v;
  SDLORA_THROW("module has no parameter or buffer named '", dotted_name, "'");
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::set_requires_grad(bool requires_grad) {
  for (auto& [name, v] : named_parameters()) v.set_requires_grad(requires_grad);
}

void Module::clear_grad() {
  for (auto& [name, v] : named_parameters()) v.clear_grad();
}

void Module::to(Device device) {
  for (auto& list : {named_parameters(), named_buffers()})
    for (auto [name, v] : list) {
      if (v.device() == device) continue;
      v.clear_grad();  // a gradient on the old device would no longer match
      v.set_data(v.data().to(device));
    }
}

Device Module::device() const {
  const auto params = named_parameters();
  return params.empty() ? Device::cpu() : params.front().second.device();
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& list : {named_parameters(), named_buffers()})
    for (auto& [name, v] : list) out.emplace(name, v.data());
  return out;
}

void LoadReport::throw_if_any(const std::string& what, const std::string& target,
                              bool strict) const {
  const bool fail = !misshaped.empty() || !problems.empty() ||
                    (strict && (!missing.empty() || !unexpected.empty()));
  if (!fail) return;
  std::ostringstream msg;
  msg << what << " does not fit " << target;
  for (const auto& p : problems) msg << "\n  " << p;
  auto list = [&](const char* kind, const std::vector<std::string>& names) {
    if (!names.empty()) msg << "\n  " << kind << " (" << names.size() << "): " << join(names);
  };
  if (strict) list("missing", missing);
  if (strict) list("unexpected", unexpected);
  list("mis-shaped", misshaped);
  SDLORA_THROW(msg.str());
}

LoadReport Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  std::vector<std::pair<std::string, Var>> targets = named_parameters();
  for (auto& b : named_buffers()) targets.push_back(b);

  LoadReport report;
  std::set<std::string> known;
  for (const auto& [name, v] : targets) {
    known.insert(name);
    auto it = state.find(name);
    if (it == state.end()) {
      report.missing.push_back(name);
    } else if (!it->second.defined() || it->second.shape() != v.shape()) {
      report.misshaped.push_back(
          name + " (checkpoint " +
          (it->second.defined() ? shape_str(it->second.shape()) : "undefined") + ", model " +
          shape_str(v.shape()) + ")");
    }
  }
  for (const auto& [name, t] : state)
    if (!known.count(name)) report.unexpected.push_back(name);

  report.throw_if_any("load_state_dict: the checkpoint", "the model", strict);

  for (auto& [name, v] : targets) {
    auto it = state.find(name);
    if (it == state.end()) continue;
    Tensor dst = v.data();
    dst.copy_(cast(it->second, v.dtype()));  // copy_ crosses devices
  }
  return report;
}

}  // namespace sdlora
