// Schedulers: PyTorch's lr sequences over 12 epochs (fixture written by make_optim_fixtures.py),
// the closed forms against hand-computed values, resuming from a saved epoch, and bad settings.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "nn/optim.h"
#include "nn/scheduler.h"
#include "tests/common/test_util.h"

namespace sdlora {
namespace {

using nlohmann::json;

const json& scheduler_cases() {
  static const json j = [] {
    const std::string path = std::string(SDLORA_NN_FIXTURES) + "/optim_reference.json";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    return json::parse(in).at("schedulers");
  }();
  return j;
}

using test::error_of;

// Two groups with one parameter each, lrs 0.1 and 0.01 (the fixture's).
struct TwoGroups {
  Var a{Tensor::zeros({1}), true};
  Var b{Tensor::zeros({1}), true};
  SGD opt;
  explicit TwoGroups(double lr0 = 0.1, double lr1 = 0.01) : opt(groups(lr0, lr1), SGDOptions()) {}
  std::vector<ParamGroup> groups(double lr0, double lr1) const {
    std::vector<ParamGroup> g(2);
    g[0].params = {a};
    g[0].lr = lr0;
    g[1].params = {b};
    g[1].lr = lr1;
    return g;
  }
};

std::unique_ptr<LRScheduler> make_scheduler(Optimizer& opt, const json& c) {
  const std::string kind = c.at("kind");
  const json& args = c.at("args");
  if (kind == "constant")
    return std::make_unique<ConstantLR>(opt, args.at("factor").get<double>(),
                                        args.at("total_iters").get<int64_t>());
  if (kind == "multistep")
    return std::make_unique<MultiStepLR>(opt, args.at("milestones").get<std::vector<int64_t>>(),
                                         args.at("gamma").get<double>());
  if (kind == "cosine")
    return std::make_unique<CosineAnnealingLR>(opt, args.at("T_max").get<int64_t>(),
                                               args.at("eta_min").get<double>());
  throw std::runtime_error("unknown scheduler " + kind);
}

// PyTorch's chainable recursion and the closed form used here agree to a few ulps.
void expect_lr(double got, double want, const std::string& what) {
  EXPECT_LE(std::fabs(got - want), 1e-12 * std::fabs(want))
      << what << ": got " << got << ", want " << want;
}

TEST(SchedPyTorch, SequencesMatchEpochByEpoch) {
  ASSERT_GE(scheduler_cases().size(), 6u);
  for (const json& c : scheduler_cases()) {
    const std::string name = c.at("name");
    SCOPED_TRACE(name);
    TwoGroups t;
    std::unique_ptr<LRScheduler> sched = make_scheduler(t.opt, c);
    const json& lrs = c.at("lrs");
    ASSERT_EQ(lrs.size(), 13u);
    for (size_t epoch = 0; epoch < lrs.size(); ++epoch) {
      if (epoch > 0) {
        t.opt.step();
        sched->step();
      }
      EXPECT_EQ(sched->last_epoch(), static_cast<int64_t>(epoch));
      for (size_t g = 0; g < 2; ++g) {
        const std::string what =
            name + " epoch " + std::to_string(epoch) + " group " + std::to_string(g);
        expect_lr(sched->get_last_lr()[g], lrs[epoch][g].get<double>(), what);
        EXPECT_EQ(t.opt.lr(g), sched->get_last_lr()[g]) << what;
      }
    }
  }
}

TEST(SchedClosedForm, HandComputedValues) {
  TwoGroups t(1.0, 0.5);
  CosineAnnealingLR cosine(t.opt, 4, 0.1);
  // eta_min + (base - eta_min)(1 + cos(pi t / 4)) / 2
  EXPECT_DOUBLE_EQ(cosine.lr_at(1.0, 0), 1.0);
  EXPECT_DOUBLE_EQ(cosine.lr_at(1.0, 2), 0.55);
  EXPECT_DOUBLE_EQ(cosine.lr_at(1.0, 4), 0.1);
  EXPECT_DOUBLE_EQ(cosine.lr_at(1.0, 6), 0.55);  // rising again past T_max
  EXPECT_DOUBLE_EQ(cosine.lr_at(1.0, 8), 1.0);
  EXPECT_DOUBLE_EQ(cosine.lr_at(1.0, 1), 0.1 + 0.9 * (1.0 + std::sqrt(0.5)) / 2.0);

  MultiStepLR multi(t.opt, {6, 2, 6}, 0.5);
  EXPECT_EQ(multi.lr_at(8.0, 1), 8.0);
  EXPECT_EQ(multi.lr_at(8.0, 2), 4.0);
  EXPECT_EQ(multi.lr_at(8.0, 5), 4.0);
  EXPECT_EQ(multi.lr_at(8.0, 6), 1.0);  // the repeated milestone counts twice

  ConstantLR warm(t.opt, 0.5, 3);
  EXPECT_EQ(warm.lr_at(2.0, 0), 1.0);
  EXPECT_EQ(warm.lr_at(2.0, 2), 1.0);
  EXPECT_EQ(warm.lr_at(2.0, 3), 2.0);
  ConstantLR constant(t.opt);
  for (int64_t e = 0; e < 5; ++e) EXPECT_EQ(constant.lr_at(2.0, e), 2.0);
}

TEST(SchedBehaviour, EachGroupFollowsItsOwnBaseLr) {
  TwoGroups t(0.2, 0.02);
  MultiStepLR sched(t.opt, {1}, 0.1);
  EXPECT_EQ(sched.base_lrs(), (std::vector<double>{0.2, 0.02}));
  sched.step();
  EXPECT_EQ(t.opt.lr(0), 0.2 * 0.1);
  EXPECT_EQ(t.opt.lr(1), 0.02 * 0.1);
}

TEST(SchedState, ResumesFromASavedEpoch) {
  TwoGroups straight, first;
  CosineAnnealingLR s_straight(straight.opt, 10, 0.001), s_first(first.opt, 10, 0.001);
  for (int e = 0; e < 7; ++e) s_straight.step();
  for (int e = 0; e < 3; ++e) s_first.step();
  const std::map<std::string, std::string> state = s_first.state_dict();
  EXPECT_EQ(state.at("sched.type"), "cosine");
  EXPECT_EQ(state.at("sched.last_epoch"), "3");
  EXPECT_EQ(state.at("sched.1.base_lr"), "0.01");
  EXPECT_EQ(state.at("sched.T_max"), "10");

  // A fresh optimizer whose lrs are already the scheduled ones (as after loading its state).
  TwoGroups resumed(first.opt.lr(0), first.opt.lr(1));
  CosineAnnealingLR s_resumed(resumed.opt, 10, 0.001);
  std::map<std::string, std::string> with_others = state;
  with_others["optim.type"] = "sgd";  // other namespaces are ignored
  s_resumed.load_state_dict(with_others);
  EXPECT_EQ(s_resumed.base_lrs(), (std::vector<double>{0.1, 0.01}));
  for (int e = 0; e < 4; ++e) s_resumed.step();
  EXPECT_EQ(s_resumed.last_epoch(), 7);
  EXPECT_EQ(s_resumed.get_last_lr(), s_straight.get_last_lr());
  EXPECT_EQ(resumed.opt.lr(0), straight.opt.lr(0));
  EXPECT_EQ(resumed.opt.lr(1), straight.opt.lr(1));
}

TEST(SchedState, RejectsAnotherSchedule) {
  TwoGroups t;
  CosineAnnealingLR cosine(t.opt, 10);
  const std::map<std::string, std::string> state = cosine.state_dict();

  TwoGroups u;
  CosineAnnealingLR other_t_max(u.opt, 20);
  EXPECT_NE(error_of([&] { other_t_max.load_state_dict(state); }).find("sched.T_max"),
            std::string::npos);
  MultiStepLR multi(u.opt, {3});
  EXPECT_NE(error_of([&] { multi.load_state_dict(state); }).find("for a cosine scheduler"),
            std::string::npos);
  CosineAnnealingLR same(u.opt, 10);
  std::map<std::string, std::string> extra = state;
  extra["sched.warmup"] = "5";
  EXPECT_NE(error_of([&] { same.load_state_dict(extra); }).find("sched.warmup"), std::string::npos);
  std::map<std::string, std::string> missing = state;
  missing.erase("sched.0.base_lr");
  EXPECT_NE(error_of([&] { same.load_state_dict(missing); }).find("sched.0.base_lr"),
            std::string::npos);
  EXPECT_EQ(same.last_epoch(), 0);  // unchanged by the failures
}

TEST(SchedErrors, BadSettingsNameTheProblem) {
  TwoGroups t;
  EXPECT_NE(error_of([&] { CosineAnnealingLR s(t.opt, 0); }).find("T_max = 0"), std::string::npos);
  EXPECT_NE(error_of([&] { ConstantLR s(t.opt, 1.5); }).find("factor = 1.5"), std::string::npos);
  EXPECT_NE(error_of([&] { MultiStepLR s(t.opt, {2}, -1.0); }).find("gamma = -1"),
            std::string::npos);
  EXPECT_EQ(t.opt.lr(0), 0.1);  // a rejected scheduler leaves the lrs alone
}

}  // namespace
}  // namespace sdlora
