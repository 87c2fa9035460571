// Metrics against hand-computed matrices, and the config contract: keys, types, overrides, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "cl/config.h"
#include "cl/metrics.h"
#include "tests/common/test_util.h"

namespace sdlora::cl {
namespace {

using sdlora::test::throws_naming;

TEST(Metrics, HandComputedMatrix) {
  AccuracyMatrix m;
  m.add({{9}, {10}, {10}});                         // R00 90
  m.add({{8, 15}, {10, 20}, {9, 18}});              // R10 80, R11 75; acc 23/30
  m.add({{6, 10, 40}, {10, 20, 50}, {7, 20, 45}});  // R20 60, R21 50, R22 80; acc 56/80
  EXPECT_EQ(m.num_tasks(), 3);
  EXPECT_DOUBLE_EQ(m.r(0, 0), 90.0);
  EXPECT_DOUBLE_EQ(m.r(1, 1), 75.0);
  EXPECT_DOUBLE_EQ(m.r(2, 1), 50.0);
  const auto acc = m.acc_per_task();
  ASSERT_EQ(acc.size(), 3u);
  EXPECT_DOUBLE_EQ(acc[0], 90.0);
  EXPECT_DOUBLE_EQ(acc[1], 100.0 * 23.0 / 30.0);  // sample-weighted, not the mean of 80 and 75
  EXPECT_DOUBLE_EQ(acc[2], 70.0);
  EXPECT_DOUBLE_EQ(m.acc_final(), 70.0);
  EXPECT_DOUBLE_EQ(m.aaa(), (90.0 + 100.0 * 23.0 / 30.0 + 70.0) / 3.0);
  // Forgetting: task 0: max(90, 80) - 60 = 30; task 1: 75 - 50 = 25; mean 27.5.
  EXPECT_DOUBLE_EQ(m.forgetting(), 27.5);
  // The released form takes the max over every row including the last: here the same.
  EXPECT_DOUBLE_EQ(m.forgetting_released(), 27.5);
  // Top-5, old (earlier tasks' classes) and new (the task's own), sample-weighted.
  EXPECT_DOUBLE_EQ(m.top5_after(0), 100.0);
  EXPECT_DOUBLE_EQ(m.top5_after(1), 100.0 * 27.0 / 30.0);
  EXPECT_DOUBLE_EQ(m.top5_after(2), 100.0 * 72.0 / 80.0);
  EXPECT_TRUE(std::isnan(m.old_after(0)));
  EXPECT_DOUBLE_EQ(m.new_after(0), 90.0);
  EXPECT_DOUBLE_EQ(m.old_after(1), 80.0);
  EXPECT_DOUBLE_EQ(m.new_after(1), 75.0);
  EXPECT_DOUBLE_EQ(m.old_after(2), 100.0 * 16.0 / 30.0);
  EXPECT_DOUBLE_EQ(m.new_after(2), 80.0);
  EXPECT_TRUE(throws_naming([&] { m.r(1, 2); }, "R[1][2]"));
  EXPECT_TRUE(throws_naming([&] { m.add({{1}, {2}, {}}); }, "must cover 4 tasks"));
  AccuracyMatrix bad;
  EXPECT_TRUE(throws_naming([&] { bad.add({{5}, {10}, {4}}); }, "top-5"));
}

TEST(Metrics, ForgettingOrdersTasksNumerically) {
  // Twelve tasks: the released code sorts task names as strings ("10" < "2"); here task j's
  // maximum is taken over rows j..10 by number. Task j scores 100 when learned and 100 - j at the
  // end.
  AccuracyMatrix m;
  for (int64_t i = 0; i < 12; ++i) {
    TaskCounts c;
    for (int64_t j = 0; j <= i; ++j) {
      c.correct.push_back(i == 11 ? 100 - j : 100);
      c.total.push_back(100);
    }
    m.add(c);
  }
  double want = 0.0;
  for (int j = 0; j < 11; ++j) want += j;
  EXPECT_DOUBLE_EQ(m.forgetting(), want / 11.0);
  AccuracyMatrix one;
  one.add({{1}, {2}, {}});
  EXPECT_DOUBLE_EQ(one.forgetting(), 0.0);
  EXPECT_TRUE(std::isnan(one.top5_after(0)));  // not counted: runs recorded before top-5
}

TEST(Metrics, ReleasedForgettingIsNeverNegative) {
  // Task 0 improves after it was learned (50 -> 70 -> 90): our form (max over rows before the
  // last) gives 50 - 90 = -40 for it, the released form's max includes the last row: 0.
  AccuracyMatrix m;
  m.add({{5}, {10}, {}});
  m.add({{7, 8}, {10, 10}, {}});
  m.add({{9, 4, 9}, {10, 10, 10}, {}});
  EXPECT_DOUBLE_EQ(m.forgetting(), ((70.0 - 90.0) + (80.0 - 40.0)) / 2.0);
  EXPECT_DOUBLE_EQ(m.forgetting_released(), (0.0 + (80.0 - 40.0)) / 2.0);
}

TEST(Config, ReadsReleasedKeysAndOurs) {
  const Config c = config_from_json(R"({"dataset": "imagenet-r", "init_cls": 20, "increment": 20,
      "seed": [1995], "milestones": [10, 15], "lrate": 0.005, "optimizer": "adam",
      "method": "sdlora-rr", "sdlora_mode": "official", "kd_tau": 0.001})");
  EXPECT_EQ(c.dataset, "imagenet-r");
  EXPECT_EQ(c.seed, 1995);
  EXPECT_EQ(c.milestones, (std::vector<int64_t>{10, 15}));
  EXPECT_EQ(c.mode(), SDLoRAMode::kOfficial);
  EXPECT_EQ(c.effective_rank_schedule().rank_for(5), 8);  // the released RR schedule
  EXPECT_EQ(c.effective_rank_schedule().rank_for(9), 6);
  // to_json round-trips.
  const Config again = config_from_json(c.to_json());
  EXPECT_EQ(again.to_json(), c.to_json());
}

TEST(Config, ErrorsNameTheKey) {
  EXPECT_TRUE(throws_naming([] { config_from_json(R"({"lrate": 0.1, "learning_rate": 1})"); },
                            "unknown config key 'learning_rate'"));
  EXPECT_TRUE(throws_naming([] { config_from_json(R"({"epochs": "ten"})"); }, "'epochs'"));
  EXPECT_TRUE(throws_naming([] { config_from_json(R"({"method": "ewc"})"); }, "'method'"));
  EXPECT_TRUE(
      throws_naming([] { config_from_json(R"({"sdlora_mode": "both"})"); }, "'sdlora_mode'"));
  EXPECT_TRUE(
      throws_naming([] { config_from_json(R"({"milestones": [15, 10]})"); }, "'milestones'"));
  EXPECT_TRUE(
      throws_naming([] { config_from_json(R"({"rank_schedule": [[1, 4]]})"); }, "'rank_schedule'"));
  EXPECT_TRUE(throws_naming([] { config_from_json(R"({"backbone": "resnet50"})"); }, "'backbone'"));
  EXPECT_TRUE(throws_naming([] { config_from_json(R"({"batch_size": 0})"); }, "'batch_size'"));
  EXPECT_TRUE(
      throws_naming([] { config_from_json(R"({"optimizer": "rmsprop"})"); }, "'optimizer'"));
  EXPECT_TRUE(throws_naming([] { config_from_json("[1, 2]", "x.json"); }, "x.json"));
  EXPECT_TRUE(throws_naming([] { load_config("/nonexistent/c.json"); }, "/nonexistent/c.json"));
  // Hostile numbers: a float far outside int64 and an unsigned above INT64_MAX are refused (no
  // undefined cast, no wrap); a deeply nested value is described, not walked.
  EXPECT_TRUE(throws_naming([] { config_from_json(R"({"epochs": 2e26})"); }, "'epochs'"));
  EXPECT_TRUE(throws_naming([] { config_from_json(R"({"epochs": 18446744073709551615})"); },
                            "expected an integer"));
  EXPECT_TRUE(throws_naming([] { config_from_json(R"({"epochs": 2.5})"); }, "'epochs'"));
  EXPECT_TRUE(throws_naming([] { config_from_json(R"({"mlp_ratio": 1e40})"); }, "mlp_ratio"));
  const std::string nested = std::string(20000, '[') + std::string(20000, ']');
  EXPECT_TRUE(throws_naming([&] { config_from_json("{\"epochs\": " + nested + "}"); },
                            "array of 1 entries"));
  EXPECT_EQ(config_from_json(R"({"epochs": 3.0})").epochs, 3);
}

TEST(Config, SeedListsAndOverrides) {
  Config c = config_from_json(R"({"seed": [1993, 1994, 1995]})");
  EXPECT_EQ(c.seed, 1993);
  EXPECT_EQ(c.seeds, (std::vector<int64_t>{1993, 1994, 1995}));
  EXPECT_EQ(c.per_seed().size(), 3u);
  EXPECT_EQ(c.per_seed()[2].seed, 1995);
  EXPECT_TRUE(c.per_seed()[2].seeds.empty());
  apply_override(c, "seed=7,8");
  EXPECT_EQ(c.seeds, (std::vector<int64_t>{7, 8}));
  EXPECT_TRUE(throws_naming([] { config_from_json(R"({"seed": [1, 1]})"); }, "listed twice"));
  EXPECT_TRUE(throws_naming([] { config_from_json(R"({"seed": []})"); }, "'seed'"));
}

TEST(Config, OverridesAreTypedByKey) {
  Config c;
  apply_override(c, "dataset=fashion-mnist");
  apply_override(c, "epochs=3");
  apply_override(c, "lrate=0.05");
  apply_override(c, "milestones=2,4");
  apply_override(c, "shuffle=false");
  apply_override(c, "rank_schedule=[[0,4],[2,2]]");
  apply_override(c, "method=sdlora-rr");
  apply_override(c, "seed=7");
  EXPECT_EQ(c.dataset, "fashion-mnist");
  EXPECT_EQ(c.epochs, 3);
  EXPECT_DOUBLE_EQ(c.lrate, 0.05);
  EXPECT_EQ(c.milestones, (std::vector<int64_t>{2, 4}));
  EXPECT_FALSE(c.shuffle);
  EXPECT_EQ(c.effective_rank_schedule().rank_for(3), 2);
  apply_override(c, "method=sdlora");  // the schedule is SD-LoRA-RR's; the others use `rank`
  EXPECT_EQ(c.effective_rank_schedule().rank_for(3), c.rank);
  apply_override(c, "method=sdlora-rr");
  EXPECT_EQ(c.seed, 7);
  EXPECT_NO_THROW(c.validate());
  EXPECT_TRUE(throws_naming([&] { apply_override(c, "epochs=many"); }, "epochs"));
  EXPECT_EQ(c.epochs, 3);  // unchanged on error
  EXPECT_TRUE(
      throws_naming([&] { apply_override(c, "colour=red"); }, "unknown config key 'colour'"));
  EXPECT_TRUE(throws_naming([&] { apply_override(c, "epochs"); }, "key=value"));
  apply_override(c, "rank=0");
  EXPECT_TRUE(throws_naming([&] { c.validate(); }, "'rank'"));
}

// A text value goes back out as JSON (run folders, checkpoints): bytes JSON cannot hold are
// refused when set, naming the key, and the config keeps its value.
TEST(Config, TextOverridesMustBeUtf8WithoutNul) {
  Config c;
  apply_override(c, "prefix=r\xc3\xa9sum\xc3\xa9");  // valid two-byte UTF-8
  EXPECT_EQ(c.prefix, "r\xc3\xa9sum\xc3\xa9");
  EXPECT_NO_THROW((void)c.to_json());
  EXPECT_TRUE(throws_naming(
      [&] {
        apply_override(c,
                       "prefix=a\x80"
                       "b");
      },
      "prefix"));
  EXPECT_TRUE(throws_naming([&] { apply_override(c, "prefix=\xc3"); }, "UTF-8"));
  EXPECT_TRUE(throws_naming([&] { apply_override(c, std::string("prefix=a\0b", 10)); }, "NUL"));
  EXPECT_EQ(c.prefix, "r\xc3\xa9sum\xc3\xa9");
  EXPECT_NO_THROW((void)c.to_json());
}

TEST(Config, ShippedConfigsLoad) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(SDLORA_CONFIGS_DIR)) {
    if (entry.path().extension() != ".json") continue;
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW(load_config(entry.path().string()));
    ++n;
  }
  EXPECT_GE(n, 1);
}

}  // namespace
}  // namespace sdlora::cl
