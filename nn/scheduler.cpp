// Learning-rate schedulers: the epoch counter and group bookkeeping, and the three closed forms.
#include "nn/scheduler.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace sdlora {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr const char* kPrefix = "sched.";

}  // namespace

// ---- LRScheduler

LRScheduler::LRScheduler(const char* type, Optimizer& optimizer)
    : type_(type), optimizer_(optimizer) {
  for (size_t g = 0; g < optimizer_.num_groups(); ++g) base_lrs_.push_back(optimizer_.lr(g));
}

void LRScheduler::start() {
  last_epoch_ = 0;
  apply();
}

void LRScheduler::step() {
  ++last_epoch_;
  apply();
}

void LRScheduler::apply() {
  SDLORA_CHECK(optimizer_.num_groups() == base_lrs_.size(), type_, " scheduler: the optimizer has ",
               optimizer_.num_groups(), " groups, the scheduler ", base_lrs_.size());
  last_lrs_.clear();
  for (size_t g = 0; g < base_lrs_.size(); ++g) {
    const double lr = lr_at(base_lrs_[g], last_epoch_);
    optimizer_.set_lr(g, lr);
    last_lrs_.push_back(lr);
  }
}

std::map<std::string, std::string> LRScheduler::state_dict() const {
  const std::string pre = kPrefix;
  std::map<std::string, std::string> out;
  out[pre + "type"] = type_;
  out[pre + "last_epoch"] = std::to_string(last_epoch_);
  out[pre + "num_groups"] = std::to_string(base_lrs_.size());
  for (size_t g = 0; g < base_lrs_.size(); ++g)
    out[pre + std::to_string(g) + ".base_lr"] = format_state_number(base_lrs_[g]);
  for (const auto& [name, text] : settings()) out[pre + name] = text;
  return out;
}

void LRScheduler::load_state_dict(const std::map<std::string, std::string>& state) {
  const std::string pre = kPrefix;
  std::set<std::string> expected;
  auto value = [&](const std::string& key) -> const std::string& {
    const auto it = state.find(key);
    SDLORA_CHECK(it != state.end(), type_, " scheduler: state has no entry ", key);
    expected.insert(key);
    return it->second;
  };
  SDLORA_CHECK(value(pre + "type") == type_, type_, " scheduler: state is for a ",
               value(pre + "type"), " scheduler");
  for (const auto& [name, text] : settings())
    SDLORA_CHECK(value(pre + name) == text, type_, " scheduler: state has ", pre + name, " = ",
                 value(pre + name), ", this scheduler ", text);
  const int64_t last_epoch = parse_state_count(value(pre + "last_epoch"), pre + "last_epoch");
  const int64_t n = parse_state_count(value(pre + "num_groups"), pre + "num_groups");
  SDLORA_CHECK(n == static_cast<int64_t>(base_lrs_.size()), type_, " scheduler: state has ", n,
               " groups, this scheduler ", base_lrs_.size());
  std::vector<double> base_lrs;
  for (size_t g = 0; g < base_lrs_.size(); ++g) {
    const std::string key = pre + std::to_string(g) + ".base_lr";
    base_lrs.push_back(parse_state_number(value(key), key));
  }
  for (const auto& [key, text] : state)
    SDLORA_CHECK(key.rfind(pre, 0) != 0 || expected.count(key), type_,
                 " scheduler: unexpected state entry ", key);
  last_epoch_ = last_epoch;
  base_lrs_ = std::move(base_lrs);
  apply();
}

// ---- ConstantLR

ConstantLR::ConstantLR(Optimizer& optimizer, double factor, int64_t total_iters)
    : LRScheduler("constant", optimizer), factor_(factor), total_iters_(total_iters) {
  SDLORA_CHECK(factor >= 0.0 && factor <= 1.0, "constant scheduler: factor = ", factor,
               " must be in [0, 1]");
  SDLORA_CHECK(total_iters >= 0, "constant scheduler: total_iters = ", total_iters,
               " must be >= 0");
  start();
}

double ConstantLR::lr_at(double base_lr, int64_t epoch) const {
  return epoch >= total_iters_ ? base_lr : base_lr * factor_;
}

std::map<std::string, std::string> ConstantLR::settings() const {
  return {{"factor", format_state_number(factor_)}, {"total_iters", std::to_string(total_iters_)}};
}

// ---- MultiStepLR

MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<int64_t> milestones, double gamma)
    : LRScheduler("multistep", optimizer), milestones_(std::move(milestones)), gamma_(gamma) {
  std::sort(milestones_.begin(), milestones_.end());
  SDLORA_CHECK(std::isfinite(gamma) && gamma >= 0.0, "multistep scheduler: gamma = ", gamma,
               " must be finite and >= 0");
  start();
}

double MultiStepLR::lr_at(double base_lr, int64_t epoch) const {
  const auto k =
      std::upper_bound(milestones_.begin(), milestones_.end(), epoch) - milestones_.begin();
  return base_lr * std::pow(gamma_, static_cast<double>(k));
}

std::map<std::string, std::string> MultiStepLR::settings() const {
  std::string ms;
  for (const int64_t m : milestones_) ms += (ms.empty() ? "" : ",") + std::to_string(m);
  return {{"milestones", ms}, {"gamma", format_state_number(gamma_)}};
}

// ---- CosineAnnealingLR

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min)
    : LRScheduler("cosine", optimizer), t_max_(t_max), eta_min_(eta_min) {
  SDLORA_CHECK(t_max > 0, "cosine scheduler: T_max = ", t_max, " must be positive");
  SDLORA_CHECK(std::isfinite(eta_min) && eta_min >= 0.0, "cosine scheduler: eta_min = ", eta_min,
               " must be finite and >= 0");
  start();
}

double CosineAnnealingLR::lr_at(double base_lr, int64_t epoch) const {
  const double c = std::cos(kPi * static_cast<double>(epoch) / static_cast<double>(t_max_));
  return eta_min_ + (base_lr - eta_min_) * (1.0 + c) / 2.0;
}

std::map<std::string, std::string> CosineAnnealingLR::settings() const {
  return {{"T_max", std::to_string(t_max_)}, {"eta_min", format_state_number(eta_min_)}};
}

}  // namespace sdlora
