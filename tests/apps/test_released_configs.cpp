// The released SD-LoRA configs, as written in the released repository (exps/sdlora_*.json), load
// and plan in the released code's semantics: every key accepted, the ignored ones listed, SGD
// with momentum 0.9 and no weight decay, multi-step decay over the milestones (decay 0 with a
// milestone never reached is their constant rate), mode official, numpy's class order.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/class_order.h"
#include "tests/apps/test_app_util.h"
#include "tests/data/data_test_util.h"

namespace sdlora {
namespace {

using nlohmann::json;

// exps/sdlora_inr.json, sdlora_ina.json, sdlora_c100.json and sdlora_dom.json of the release.
const char* kImageNetR = R"({
    "prefix": "reproduce", "dataset": "imagenetr", "memory_size": 0, "memory_per_class": 0,
    "fixed_memory": false, "shuffle": true, "init_cls": 20, "increment": 20,
    "model_name": "sdlora", "backbone_type": "vit_base_patch16_224", "device": ["0"],
    "optimizer": "adam", "scheduler": "constant", "filepath": "./ImageNetR3/", "seed": [1995],
    "init_epoch": 20, "init_lr": 1e-2, "init_milestones": [10000], "init_lr_decay": 0,
    "init_weight_decay": 0.0005, "epochs": 20, "lrate": 1e-2, "milestones": [10000],
    "lrate_decay": 0, "batch_size": 128, "weight_decay": 2e-4})";
const char* kImageNetA = R"({
    "prefix": "reproduce", "dataset": "imageneta", "memory_size": 0, "memory_per_class": 0,
    "fixed_memory": false, "shuffle": true, "init_cls": 20, "increment": 20,
    "model_name": "sdlora", "backbone_type": "vit_base_patch16_224", "device": ["0"],
    "optimizer": "adam", "scheduler": "constant", "filepath": "./ImageNetA/", "seed": [1993],
    "init_epoch": 20, "init_lr": 1e-2, "init_milestones": [10, 15], "init_lr_decay": 0.05,
    "init_weight_decay": 0.0005, "epochs": 20, "lrate": 5e-3, "milestones": [10, 15],
    "lrate_decay": 0.05, "batch_size": 128, "weight_decay": 5e-4})";
const char* kCifar = R"({
    "prefix": "reproduce", "dataset": "cifar224", "memory_size": 0, "memory_per_class": 0,
    "fixed_memory": false, "shuffle": true, "init_cls": 10, "increment": 10,
    "model_name": "sdlora", "backbone_type": "vit_base_patch16_224", "device": ["0"],
    "seed": [1993], "scheduler": "cosine", "min_lr": 5e-3, "tuned_epoch": 20,
    "filepath": "./CF100/", "init_epoch": 20, "init_lr": 8e-3, "init_milestones": [60, 120, 170],
    "init_lr_decay": 0.1, "init_weight_decay": 0.0005, "epochs": 20, "lrate": 8e-3,
    "milestones": [40, 70], "lrate_decay": 0, "batch_size": 128, "weight_decay": 2e-4})";
const char* kDomainNet = R"({
    "prefix": "reproduce", "dataset": "domainnet", "memory_size": 0, "memory_per_class": 0,
    "fixed_memory": false, "shuffle": true, "init_cls": 69, "increment": 69,
    "model_name": "sdlora", "backbone_type": "vit_base_patch16_224", "device": ["0", "1"],
    "optimizer": "adam", "scheduler": "steplr", "filepath": "./domainnet-verify/",
    "seed": [1993], "init_epoch": 10, "init_lr": 0.02, "init_milestones": [4, 6, 8, 10000],
    "init_lr_decay": 0.005, "init_weight_decay": 0.000, "epochs": 10, "lrate": 0.02,
    "milestones": [4, 6, 8, 10000], "lrate_decay": 0.005, "batch_size": 128,
    "weight_decay": 0.0})";

// A pre-split image-folder dataset of `classes` classes with one tiny PNG per class and split.
void write_folder_dataset(const data::test::TempDir& dir, int classes) {
  for (int c = 0; c < classes; ++c) {
    char name[32];
    std::snprintf(name, sizeof name, "c%03d", c);
    for (const char* split : {"train", "test"})
      data::test::write_png(dir.file(std::string(split) + "/" + name + "/0.png"),
                            data::test::pattern_image(4, 4, 3, c));
  }
}

void write_cifar(const data::test::TempDir& dir) {
  std::vector<data::Image> images;
  std::vector<int> fine, coarse;
  for (int c = 0; c < 100; ++c) {
    images.push_back(data::test::pattern_image(32, 32, 3, c));
    fine.push_back(c);
    coarse.push_back(c / 5);
  }
  const auto bytes = data::test::cifar_binary_bytes(images, fine, coarse);
  data::test::write_bytes(dir.file("train.bin"), bytes);
  data::test::write_bytes(dir.file("test.bin"), bytes);
}

json dry_run(const std::string& config_text, const data::test::TempDir& data,
             const std::string& extra = "") {
  const std::string path = data.file("config.json");
  data::test::write_text(path, config_text);
  const test::RunResult r = test::run_sdlora(
      "train --config " + path + " --set data_path=" + data.path() + " --dry-run" + extra, true);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return json::parse(r.output);
}

// Per-epoch rates of MultiStepLR(lr, milestones, gamma), computed independently.
std::vector<double> multistep(double lr, const std::vector<int>& milestones, double gamma,
                              int epochs) {
  std::vector<double> out;
  for (int e = 0; e < epochs; ++e) {
    int passed = 0;
    for (int m : milestones) passed += e >= m ? 1 : 0;
    out.push_back(lr * std::pow(gamma, passed));
  }
  return out;
}

void expect_lrs(const json& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i].get<double>(), want[i], 1e-12 + 1e-6 * want[i]) << what << " epoch " << i;
}

void expect_released_semantics(const json& plan, int64_t classes, int64_t per_task, int64_t seed) {
  EXPECT_TRUE(plan.at("released_config").get<bool>());
  EXPECT_EQ(plan.at("optimizer"), "sgd");
  EXPECT_DOUBLE_EQ(plan.at("momentum").get<double>(), 0.9);
  EXPECT_DOUBLE_EQ(plan.at("weight_decay").get<double>(), 0.0);
  EXPECT_EQ(plan.at("scheduler"), "multistep");
  EXPECT_EQ(plan.at("sdlora_mode"), "official");
  EXPECT_EQ(plan.at("num_classes").get<int64_t>(), classes);
  EXPECT_EQ(plan.at("num_tasks").get<int64_t>(), classes / per_task);
  EXPECT_EQ(plan.at("class_order").get<std::vector<int64_t>>(),
            data::ClassOrder(classes, seed, per_task, per_task).order());
  const std::string ignored = plan.at("ignored").dump();
  for (const char* key :
       {"optimizer", "scheduler", "weight_decay", "init_weight_decay", "filepath"})
    EXPECT_NE(ignored.find(key), std::string::npos) << key << " not listed in " << ignored;
  for (const json& t : plan.at("tasks")) {
    EXPECT_EQ(t.at("train_images").get<int64_t>(), per_task);  // one image per class
    EXPECT_EQ(t.at("test_images").get<int64_t>(), per_task);
  }
}

TEST(ReleasedConfigs, ImageNetRPlansAsTheReleasedCode) {
  data::test::TempDir data;
  write_folder_dataset(data, 200);
  const json plan = dry_run(kImageNetR, data);
  expect_released_semantics(plan, 200, 20, 1995);
  EXPECT_EQ(plan.at("reader"), "imagenet-r");
  for (const json& t : plan.at("tasks")) {
    EXPECT_EQ(t.at("epochs").get<int64_t>(), 20);
    // Decay 0 at milestone 10000: a constant 0.01 over the 20 epochs.
    expect_lrs(t.at("lr_per_epoch"), std::vector<double>(20, 0.01), "imagenet-r");
  }
}

TEST(ReleasedConfigs, ImageNetAPlansAsTheReleasedCode) {
  data::test::TempDir data;
  write_folder_dataset(data, 200);
  const json plan = dry_run(kImageNetA, data);
  expect_released_semantics(plan, 200, 20, 1993);
  const json& tasks = plan.at("tasks");
  expect_lrs(tasks[0].at("lr_per_epoch"), multistep(0.01, {10, 15}, 0.05, 20), "task 0");
  expect_lrs(tasks[1].at("lr_per_epoch"), multistep(0.005, {10, 15}, 0.05, 20), "task 1");
}

TEST(ReleasedConfigs, Cifar224PlansAsTheReleasedCode) {
  data::test::TempDir data;
  write_cifar(data);
  const json plan = dry_run(kCifar, data);
  expect_released_semantics(plan, 100, 10, 1993);
  EXPECT_EQ(plan.at("reader"), "cifar100");
  // numpy's RandomState(1993).permutation(100) begins 68, 56, 78, 8, 23, 84, 90, 65, 74, 76.
  const auto order = plan.at("class_order").get<std::vector<int64_t>>();
  EXPECT_EQ(std::vector<int64_t>(order.begin(), order.begin() + 10),
            (std::vector<int64_t>{68, 56, 78, 8, 23, 84, 90, 65, 74, 76}));
  // The cosine scheduler and min_lr are ignored: milestones beyond the 20 epochs, constant.
  for (const json& t : plan.at("tasks"))
    expect_lrs(t.at("lr_per_epoch"), std::vector<double>(20, 0.008), "cifar224");
}

TEST(ReleasedConfigs, DomainNetPlansAndRefusesTwoGpusWhenRun) {
  data::test::TempDir data;
  write_folder_dataset(data, 345);
  const json plan = dry_run(kDomainNet, data);
  expect_released_semantics(plan, 345, 69, 1993);
  for (const json& t : plan.at("tasks"))
    expect_lrs(t.at("lr_per_epoch"), multistep(0.02, {4, 6, 8, 10000}, 0.005, 10), "domainnet");
  // device ["0", "1"]: the plan prints, the run is refused naming data parallel.
  const std::string path = data.file("config.json");
  const test::RunResult r = test::run_sdlora(
      "train --config " + path + " --set data_path=" + data.path() + " --out " + data.file("run"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("data parallel"), std::string::npos) << r.output;
}

TEST(ReleasedConfigs, RefusesWhatTheProjectDoesNotRun) {
  data::test::TempDir data;
  write_folder_dataset(data, 4);
  auto refused = [&](const std::string& text, const std::string& message) {
    const std::string path = data.file("bad.json");
    data::test::write_text(path, text);
    const test::RunResult r = test::run_sdlora("train --config " + path + " --dry-run");
    EXPECT_NE(r.exit_code, 0) << text;
    EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
  };
  refused(R"({"model_name": "l2p", "dataset": "imagenetr"})", "sdlora-rr");  // lists our methods
  refused(R"({"model_name": "sdlora", "dataset": "imagenetr", "memory_size": 2000})", "rehearsal");
  // Our own configs keep their strict meaning: released-only keys are errors there.
  refused(R"({"dataset": "imagenet-r", "min_lr": 0.001})", "min_lr");
  refused(R"({"dataset": "imagenet-r", "lrate_decay": 0})", "lrate_decay");
}

}  // namespace
}  // namespace sdlora
