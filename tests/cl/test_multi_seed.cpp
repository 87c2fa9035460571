// Multi-seed runs: one run folder per seed (the same results as a single run of that seed), a
// summary whose mean and standard deviation match an independent computation, and a resume that
// continues the unfinished seeds only.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cl/multi_seed.h"
#include "cl/run_model.h"
#include "cl_test_util.h"

namespace sdlora::cl {
namespace {

using test::synthetic_datasets;
using test::temp_dir;
using test::tiny_config;

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// Stops the run in task 1 of the seed whose "seed N" line was reported last.
class StopInSeed : public Reporter {
 public:
  StopInSeed(int64_t seed, std::atomic<bool>* flag) : seed_(seed), flag_(flag) {}
  void on_line(const std::string& line) override {
    if (line.rfind("seed ", 0) == 0)
      armed_ = line.rfind("seed " + std::to_string(seed_) + " ", 0) == 0;
  }
  void on_batch(const Progress& p) override {
    if (armed_ && p.task == 1) flag_->store(true);
  }

 private:
  int64_t seed_;
  std::atomic<bool>* flag_;
  bool armed_ = false;
};

Config two_seeds() {
  Config c = tiny_config("sdlora");
  c.init_epoch = c.epochs = 2;
  c.seeds = {1993, 7};
  c.seed = 1993;
  c.class_order_seed = 1993;  // the class order fixed, the training randomness varied
  c.validate();
  return c;
}

TEST(MultiSeed, OneRunPerSeedAndTheirSummary) {
  const Config c = two_seeds();
  const Datasets d = synthetic_datasets();
  RunOptions o;
  o.run_dir = temp_dir("seeds");
  const MultiSeedResult r = run_seeds(c, d, o);
  ASSERT_EQ(r.runs.size(), 2u);
  EXPECT_EQ(r.finished, 2);
  std::vector<double> acc, aaa;
  for (const Config& one : c.per_seed()) {
    EXPECT_TRUE(one.seeds.empty());
    auto vit = make_backbone(one);
    const RunResult single = run_training(one, d, *vit);  // the same seed alone, no folder
    const nlohmann::json m = read_json(seed_dir(o.run_dir, one.seed) + "/metrics.json");
    EXPECT_EQ(m.at("seed").get<int64_t>(), one.seed);
    EXPECT_DOUBLE_EQ(m.at("acc_final").get<double>(), single.matrix.acc_final());
    EXPECT_EQ(single.class_order, r.runs.front().result.class_order);  // class order fixed
    acc.push_back(single.matrix.acc_final());
    aaa.push_back(single.matrix.aaa());
  }
  const nlohmann::json sum = read_json(o.run_dir + "/summary.json");
  const double mean = (acc[0] + acc[1]) / 2, sd = std::fabs(acc[0] - acc[1]) / std::sqrt(2.0);
  EXPECT_NEAR(sum.at("acc_final").at("mean").get<double>(), mean, 1e-9);
  EXPECT_NEAR(sum.at("acc_final").at("std").get<double>(), sd, 1e-9);  // sample std, n - 1 = 1
  EXPECT_NEAR(sum.at("aaa").at("mean").get<double>(), (aaa[0] + aaa[1]) / 2, 1e-9);
  EXPECT_EQ(sum.at("runs").size(), 2u);
  EXPECT_TRUE(std::filesystem::exists(o.run_dir + "/summary.txt"));
  // The whole config, seed list included, is kept and reloads.
  const Config saved = load_run_config(o.run_dir);
  EXPECT_EQ(saved.seeds, c.seeds);
  EXPECT_DOUBLE_EQ(mean_std({5.0}).std, 0.0);
  std::filesystem::remove_all(o.run_dir);
}

TEST(MultiSeed, ResumeContinuesTheUnfinishedSeeds) {
  const Config c = two_seeds();
  const Datasets d = synthetic_datasets();
  RunOptions o;
  o.run_dir = temp_dir("seeds_resume");
  std::atomic<bool> stop{false};
  StopInSeed reporter(7, &stop);
  o.stop = &stop;
  o.reporter = &reporter;
  EXPECT_THROW(run_seeds(c, d, o), RunInterrupted);
  EXPECT_EQ(last_finished_task(seed_dir(o.run_dir, 1993)), 2);  // the first seed finished
  EXPECT_EQ(last_finished_task(seed_dir(o.run_dir, 7)), 0);     // the second stopped in task 1
  const auto first_time =
      std::filesystem::last_write_time(seed_dir(o.run_dir, 1993) + "/state.json");

  RunOptions again;
  again.run_dir = o.run_dir;
  // Without --resume an existing folder is refused.
  EXPECT_THROW(run_seeds(c, d, again), std::exception);
  again.resume = true;
  const MultiSeedResult r = run_seeds(c, d, again);
  EXPECT_EQ(r.finished, 2);
  EXPECT_EQ(last_finished_task(seed_dir(o.run_dir, 7)), 2);
  // The finished seed was read back, not trained again.
  EXPECT_EQ(std::filesystem::last_write_time(seed_dir(o.run_dir, 1993) + "/state.json"),
            first_time);
  std::filesystem::remove_all(o.run_dir);
}

}  // namespace
}  // namespace sdlora::cl
