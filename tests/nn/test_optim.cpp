// Optimizers: PyTorch's sequences (fixture written by make_optim_fixtures.py) replayed step by
// step; checkpoint and resume bit-exactly (also through a safetensors file); skipped parameters;
// per-group learning rates and overrides; the errors a user would need.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "nn/optim.h"
#include "nn/safetensors.h"
#include "nn/scheduler.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora {
namespace {

using nlohmann::json;

const json& fixture() {
  static const json j = [] {
    const std::string path = std::string(SDLORA_NN_FIXTURES) + "/optim_reference.json";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    json parsed = json::parse(in);
    if (parsed.at("version").get<int>() != 1) throw std::runtime_error(path + ": unknown version");
    return parsed;
  }();
  return j;
}

const json& optimizer_case(const std::string& name) {
  for (const json& c : fixture().at("optimizers"))
    if (c.at("name") == name) return c;
  throw std::runtime_error("no optimizer case " + name);
}

Tensor tensor_of(const json& values, const json& shape) {
  return Tensor::from_vector<float>(values.get<std::vector<float>>(), shape.get<Shape>());
}

std::string string_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// One fixture case rebuilt on the C++ side: its parameters (by group), optimizer and scheduler.
struct CaseRun {
  std::vector<std::vector<Var>> params;
  std::unique_ptr<Optimizer> opt;
  std::unique_ptr<LRScheduler> sched;
};

std::unique_ptr<Optimizer> make_optimizer(const std::string& type, std::vector<ParamGroup> groups,
                                          const json& defaults) {
  auto get = [&](const char* name, double fallback) { return defaults.value(name, fallback); };
  if (type == "sgd") {
    SGDOptions o;
    o.lr = 0.0;  // every group sets its own
    o.momentum = get("momentum", 0.0);
    o.dampening = get("dampening", 0.0);
    o.weight_decay = get("weight_decay", 0.0);
    o.nesterov = get("nesterov", 0.0) != 0.0;
    return std::make_unique<SGD>(std::move(groups), o);
  }
  AdamOptions o = type == "adamw" ? AdamW::default_options() : AdamOptions();
  o.beta1 = get("beta1", o.beta1);
  o.beta2 = get("beta2", o.beta2);
  o.eps = get("eps", o.eps);
  o.weight_decay = get("weight_decay", o.weight_decay);
  if (type == "adamw") return std::make_unique<AdamW>(std::move(groups), o);
  if (type == "adam") return std::make_unique<Adam>(std::move(groups), o);
  throw std::runtime_error("unknown optimizer " + type);
}

// params_json: values per group and parameter (the fixture's initial ones unless given).
CaseRun make_run(const json& c, const json* params_json = nullptr) {
  const json& values = params_json ? *params_json : c.at("params");
  CaseRun run;
  std::vector<ParamGroup> groups;
  for (size_t g = 0; g < c.at("shapes").size(); ++g) {
    ParamGroup group;
    std::vector<Var> ps;
    for (size_t i = 0; i < c.at("shapes")[g].size(); ++i)
      ps.emplace_back(tensor_of(values[g][i], c.at("shapes")[g][i]), true);
    group.params = ps;
    group.lr = c.at("group_lrs")[g].get<double>();
    if (g == 1) group.overrides = c.at("group1_overrides").get<Hyperparams>();
    run.params.push_back(ps);
    groups.push_back(std::move(group));
  }
  run.opt = make_optimizer(c.at("optimizer"), std::move(groups), c.at("defaults"));
  if (c.contains("scheduler")) {
    const json& args = c.at("scheduler").at("args");
    run.sched =
        std::make_unique<MultiStepLR>(*run.opt, args.at("milestones").get<std::vector<int64_t>>(),
                                      args.at("gamma").get<double>());
  }
  return run;
}

void run_step(CaseRun& run, const json& c, size_t step) {
  for (size_t g = 0; g < run.params.size(); ++g) {
    for (size_t i = 0; i < run.params[g].size(); ++i) {
      const json& grad = c.at("grads")[step][g][i];
      if (grad.is_null())
        run.params[g][i].clear_grad();
      else
        run.params[g][i].set_grad(tensor_of(grad, c.at("shapes")[g][i]));
    }
  }
  run.opt->step();
  if (run.sched) run.sched->step();
}

const char* const kOptimizerCases[] = {
    "sgd_plain", "sgd_momentum", "sgd_nesterov_wd", "sgd_dampening",  "sgd_group_overrides",
    "adam",      "adam_wd",      "adamw",           "adamw_multistep"};

// PyTorch's vectorised kernels fuse some multiply-adds that run here as two rounded float32 ops:
// after five steps the parameters (magnitudes 0.25 to 1) differ by at most two ulps (~1.2e-7).
constexpr double kRtol = 1e-6;

TEST(OptimPyTorch, SequencesMatchStepByStep) {
  for (const char* name : kOptimizerCases) {
    SCOPED_TRACE(name);
    const json& c = optimizer_case(name);
    CaseRun run = make_run(c);
    const size_t steps = c.at("expected").size();
    ASSERT_EQ(steps, 5u);
    for (size_t s = 0; s < steps; ++s) {
      run_step(run, c, s);
      for (size_t g = 0; g < run.params.size(); ++g)
        for (size_t i = 0; i < run.params[g].size(); ++i)
          EXPECT_TRUE(test::all_close(run.params[g][i].data(),
                                      c.at("expected")[s][g][i].get<std::vector<double>>(), kRtol,
                                      0.0,
                                      std::string(name) + " step " + std::to_string(s) + " group " +
                                          std::to_string(g) + " param " + std::to_string(i)));
    }
  }
}

TEST(OptimPyTorch, FixtureSkipsTheParameterWithoutAGradient) {
  // In every case group 0's parameter 1 gets no gradient at step 2: it keeps its value and its
  // step count lags by one.
  const json& c = optimizer_case("adam");
  CaseRun run = make_run(c);
  for (size_t s = 0; s < 5; ++s) {
    const std::vector<float> before = run.params[0][1].data().to_vector<float>();
    run_step(run, c, s);
    if (s == 2) {
      EXPECT_EQ(run.params[0][1].data().to_vector<float>(), before);
    }
  }
  EXPECT_EQ(run.opt->step_count(0, 0), 5);
  EXPECT_EQ(run.opt->step_count(0, 1), 4);
  EXPECT_EQ(run.opt->step_count(1, 0), 5);
}

std::vector<std::vector<std::vector<float>>> values_of(const CaseRun& run) {
  std::vector<std::vector<std::vector<float>>> out;
  for (const auto& group : run.params) {
    out.emplace_back();
    for (const Var& p : group) out.back().push_back(p.data().to_vector<float>());
  }
  return out;
}

json params_json(const CaseRun& run) {
  json j = json::array();
  for (const auto& group : values_of(run)) j.push_back(group);
  return j;
}

TEST(OptimState, ResumesBitExactlyMidSequence) {
  for (const char* name : kOptimizerCases) {
    SCOPED_TRACE(name);
    const json& c = optimizer_case(name);
    CaseRun straight = make_run(c);
    CaseRun first = make_run(c);
    for (size_t s = 0; s < 5; ++s) run_step(straight, c, s);
    for (size_t s = 0; s < 3; ++s) run_step(first, c, s);

    const OptimizerState state = first.opt->state_dict();
    const std::map<std::string, std::string> sched_state =
        first.sched ? first.sched->state_dict() : std::map<std::string, std::string>{};
    // A fresh run from the checkpointed parameter values, with other lrs until the state lands.
    const json saved_params = params_json(first);
    CaseRun resumed = make_run(c, &saved_params);
    first.opt.reset();  // the saved state must not depend on the original optimizer
    resumed.opt->set_lr(0, 123.0);
    resumed.opt->load_state_dict(state);
    if (resumed.sched) resumed.sched->load_state_dict(sched_state);
    for (size_t s = 3; s < 5; ++s) run_step(resumed, c, s);
    EXPECT_EQ(values_of(resumed), values_of(straight));
    for (size_t g = 0; g < 2; ++g) EXPECT_EQ(resumed.opt->lr(g), straight.opt->lr(g));
  }
}

TEST(OptimState, NamesEntriesAsDocumented) {
  const json& c = optimizer_case("adam_wd");
  CaseRun run = make_run(c);
  run_step(run, c, 0);
  const OptimizerState st = run.opt->state_dict();
  for (const char* key :
       {"optim.0.0.exp_avg", "optim.0.0.exp_avg_sq", "optim.0.0.step", "optim.1.0.exp_avg"})
    EXPECT_TRUE(st.tensors.count(key)) << key;
  EXPECT_EQ(st.tensors.at("optim.0.0.step").to_vector<int64_t>(), std::vector<int64_t>{1});
  EXPECT_EQ(st.values.at("optim.type"), "adam");
  EXPECT_EQ(st.values.at("optim.num_groups"), "2");
  EXPECT_EQ(st.values.at("optim.1.num_params"), "1");
  EXPECT_EQ(st.values.at("optim.0.lr"), "0.10000000000000001");
  EXPECT_EQ(st.values.at("optim.1.beta1"), "0.80000000000000004");
  EXPECT_EQ(parse_state_number(st.values.at("optim.0.eps"), "eps"), 1e-6);
  // The copies do not follow later steps.
  const std::vector<float> m = st.tensors.at("optim.0.0.exp_avg").to_vector<float>();
  run_step(run, c, 1);
  EXPECT_EQ(st.tensors.at("optim.0.0.exp_avg").to_vector<float>(), m);
}

TEST(OptimState, RoundTripsThroughSafetensors) {
  const json& c = optimizer_case("sgd_nesterov_wd");
  CaseRun straight = make_run(c), first = make_run(c);
  for (size_t s = 0; s < 5; ++s) run_step(straight, c, s);
  for (size_t s = 0; s < 2; ++s) run_step(first, c, s);
  const std::string path = test::temp_path("optim.safetensors");
  const OptimizerState st = first.opt->state_dict();
  std::map<std::string, Tensor> tensors = st.tensors;
  tensors["model.weight"] = Tensor::zeros({2});  // other entries share the file
  save_safetensors(path, tensors, st.values);
  const SafetensorsFile file = load_safetensors(path);
  std::filesystem::remove(path);
  const json saved_params = params_json(first);
  CaseRun resumed = make_run(c, &saved_params);
  resumed.opt->load_state_dict({file.tensors, file.metadata});
  for (size_t s = 2; s < 5; ++s) run_step(resumed, c, s);
  EXPECT_EQ(values_of(resumed), values_of(straight));
}

TEST(OptimState, RejectsMismatchedStates) {
  const json& c = optimizer_case("adam");
  CaseRun run = make_run(c);
  run_step(run, c, 0);
  const OptimizerState good = run.opt->state_dict();
  CaseRun other = make_run(c);

  OptimizerState st = good;
  st.tensors["optim.0.1.exp_avg"] = Tensor::zeros({3});
  EXPECT_NE(string_error([&] { other.opt->load_state_dict(st); }).find("optim.0.1.exp_avg"),
            std::string::npos);
  st = good;
  st.tensors.erase("optim.1.0.exp_avg_sq");
  EXPECT_NE(string_error([&] { other.opt->load_state_dict(st); }).find("optim.1.0.exp_avg_sq"),
            std::string::npos);
  st = good;
  st.tensors["optim.0.0.momentum_buffer"] = Tensor::zeros({2, 3});
  EXPECT_NE(string_error([&] { other.opt->load_state_dict(st); }).find("unexpected"),
            std::string::npos);
  st = good;
  st.values["optim.0.amsgrad"] = "1";
  EXPECT_NE(string_error([&] { other.opt->load_state_dict(st); }).find("optim.0.amsgrad"),
            std::string::npos);
  st = good;
  st.values.erase("optim.1.eps");
  EXPECT_NE(string_error([&] { other.opt->load_state_dict(st); }).find("optim.1.eps"),
            std::string::npos);
  st = good;
  st.values["optim.0.lr"] = "fast";
  EXPECT_NE(string_error([&] { other.opt->load_state_dict(st); }).find("optim.0.lr"),
            std::string::npos);
  st = good;
  st.values["optim.type"] = "sgd";
  EXPECT_NE(string_error([&] { other.opt->load_state_dict(st); }).find("is for sgd"),
            std::string::npos);
  // Nothing above changed the optimizer.
  EXPECT_EQ(other.opt->step_count(0, 0), 0);
  EXPECT_EQ(other.opt->state_dict().tensors.size(), 0u);

  // Parameters in other groups or of other shapes.
  Var a(Tensor::zeros({2, 3}), true), b(Tensor::zeros({4}), true);
  Adam one_group(std::vector<Var>{a, b});
  EXPECT_NE(string_error([&] { one_group.load_state_dict(good); }).find("2 groups"),
            std::string::npos);
}

TEST(OptimBehaviour, SkipsParametersWithoutGradients) {
  Var with(Tensor::full({3}, 1.0), true), without(Tensor::full({2}, 2.0), true);
  SGDOptions o;
  o.lr = 0.5;
  o.momentum = 0.9;
  SGD opt(std::vector<Var>{with, without}, o);
  with.set_grad(Tensor::full({3}, 1.0));
  opt.step();
  EXPECT_EQ(with.data().to_vector<float>(), std::vector<float>(3, 0.5f));
  EXPECT_EQ(without.data().to_vector<float>(), std::vector<float>(2, 2.0f));
  EXPECT_EQ(opt.step_count(0, 1), 0);
  const OptimizerState st = opt.state_dict();
  EXPECT_TRUE(st.tensors.count("optim.0.0.momentum_buffer"));
  EXPECT_FALSE(st.tensors.count("optim.0.1.momentum_buffer"));
  EXPECT_FALSE(st.tensors.count("optim.0.1.step"));
}

TEST(OptimBehaviour, GroupsUseTheirOwnLearningRates) {
  Var a(Tensor::full({2}, 1.0), true), b(Tensor::full({2}, 1.0), true);
  std::vector<ParamGroup> groups(2);
  groups[0].params = {a};
  groups[1].params = {b};
  groups[1].lr = 0.25;
  SGDOptions o;
  o.lr = 0.5;
  SGD opt(std::move(groups), o);
  EXPECT_EQ(opt.lr(0), 0.5);
  EXPECT_EQ(opt.lr(1), 0.25);
  a.set_grad(Tensor::full({2}, 1.0));
  b.set_grad(Tensor::full({2}, 1.0));
  opt.step();
  EXPECT_EQ(a.data().to_vector<float>(), std::vector<float>(2, 0.5f));
  EXPECT_EQ(b.data().to_vector<float>(), std::vector<float>(2, 0.75f));
  opt.set_lr(1, 0.5);
  opt.step();
  EXPECT_EQ(a.data().to_vector<float>(), std::vector<float>(2, 0.0f));
  EXPECT_EQ(b.data().to_vector<float>(), std::vector<float>(2, 0.25f));
}

TEST(OptimBehaviour, AdamWDecaysDecoupledAndAdamThroughTheGradient) {
  // With a zero gradient Adam's update is zero unless weight decay enters the gradient; AdamW
  // only shrinks the parameter by (1 - lr wd).
  Var p(Tensor::full({1}, 2.0), true), q(Tensor::full({1}, 2.0), true);
  AdamOptions o;
  o.lr = 0.1;
  o.weight_decay = 0.5;
  AdamW adamw(std::vector<Var>{p}, o);
  Adam adam(std::vector<Var>{q}, o);
  p.set_grad(Tensor::zeros({1}));
  q.set_grad(Tensor::zeros({1}));
  adamw.step();
  adam.step();
  EXPECT_FLOAT_EQ(p.data().item(), 2.0f * (1.0f - 0.05f));
  // Adam: g = wd p = 1, m_hat = 1, v_hat = 1: p -= lr / (1 + eps).
  EXPECT_NEAR(q.data().item(), 1.9, 1e-6);
}

TEST(OptimBehaviour, ZeroGradZeroesOrDrops) {
  Var a(Tensor::full({2}, 1.0), true);
  SGD opt(std::vector<Var>{a}, SGDOptions());
  a.set_grad(Tensor::full({2}, 3.0));
  opt.zero_grad();
  ASSERT_TRUE(a.grad().defined());
  EXPECT_EQ(a.grad().to_vector<float>(), std::vector<float>(2, 0.0f));
  opt.zero_grad(/*set_to_none=*/true);
  EXPECT_FALSE(a.grad().defined());
}

TEST(OptimBehaviour, StepRecordsNoGraph) {
  Var a(Tensor::full({2}, 1.0), true);
  Adam opt(std::vector<Var>{a});
  a.set_grad(Tensor::full({2}, 1.0));
  opt.step();
  EXPECT_TRUE(a.is_leaf());
  EXPECT_TRUE(grad_enabled());
}

TEST(OptimErrors, BadSettingsNameTheProblem) {
  Var a(Tensor::zeros({2}), true);
  SGDOptions nesterov;
  nesterov.nesterov = true;
  EXPECT_NE(string_error([&] { SGD(std::vector<Var>{a}, nesterov); }).find("Nesterov"),
            std::string::npos);
  SGDOptions negative;
  negative.lr = -1.0;
  EXPECT_NE(string_error([&] { SGD(std::vector<Var>{a}, negative); }).find("lr = -1"),
            std::string::npos);
  AdamOptions beta;
  beta.beta2 = 1.0;
  EXPECT_NE(string_error([&] { Adam(std::vector<Var>{a}, beta); }).find("beta2"),
            std::string::npos);

  std::vector<ParamGroup> groups(1);
  groups[0].params = {a};
  groups[0].overrides = {{"betas", 0.5}};
  EXPECT_NE(
      string_error([&] { Adam(groups, AdamOptions()); }).find("unknown hyperparameter 'betas'"),
      std::string::npos);
  std::vector<ParamGroup> twice(2);
  twice[0].params = {a};
  twice[1].params = {a};
  EXPECT_NE(string_error([&] { SGD(twice, SGDOptions()); }).find("more than once"),
            std::string::npos);

  SGD opt(std::vector<Var>{a}, SGDOptions());
  EXPECT_NE(string_error([&] { opt.set_hyper(0, "momentum", -0.5); }).find("momentum"),
            std::string::npos);
  EXPECT_EQ(opt.hyper(0, "momentum"), 0.0);  // unchanged
  EXPECT_NE(string_error([&] { opt.hyper(0, "beta1"); }).find("unknown hyperparameter 'beta1'"),
            std::string::npos);
}

}  // namespace
}  // namespace sdlora
