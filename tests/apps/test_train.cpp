// The trainer end to end through the real binary: `sdlora train` on a tiny Fashion-MNIST-format
// dataset written here (--dry-run plan, run folder, metrics), `sdlora eval` agreeing with the
// run's own accuracy, `sdlora export` loadable by `sdlora forward` with the same logits as the
// in-process model, resume after --max-tasks, and the command-line errors. Plus a reduced demo.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/demo.h"
#include "autograd/var.h"
#include "cl/config.h"
#include "cl/run_model.h"
#include "data/class_order.h"
#include "nn/safetensors.h"
#include "tensor/ops.h"
#include "tests/apps/test_app_util.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

namespace sdlora {
namespace {

namespace fs = std::filesystem;

class TrainCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::temp_dir("train");
    data::test::write_bar_dataset(root_ + "/data", {12, 3, 10, 200, 6});
    config_ = root_ + "/tiny.json";
    std::ofstream(config_) << R"({
      "dataset": "fashion-mnist", "data_path": ")"
                           << root_ << R"(/data",
      "init_cls": 4, "increment": 3, "seed": 1993, "method": "sdlora-kd",
      "backbone": "custom", "image_size": 8, "patch_size": 4, "embed_dim": 16, "depth": 1,
      "num_heads": 2, "mlp_ratio": 2.0, "channels": 1, "transform": "none", "rank": 2,
      "init_epoch": 2, "epochs": 2, "init_lr": 0.05, "lrate": 0.05, "scheduler": "constant",
      "batch_size": 8, "num_workers": 1, "cache_mb": 8})";
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string root_, config_;
};

TEST_F(TrainCommand, DryRunPrintsThePlan) {
  const test::RunResult r =
      test::run_sdlora("train --config " + config_ + " --out " + root_ + "/run --dry-run", true);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j.at("dataset"), "fashion-mnist");
  // numpy's RandomState(1993).permutation(10) (itself checked in tests/data).
  EXPECT_EQ(j.at("class_order").get<std::vector<int64_t>>(),
            data::ClassOrder(10, 1993, 4, 3).order());
  ASSERT_EQ(j.at("tasks").size(), 3u);  // 4 + 3 + 3 classes
  EXPECT_EQ(j.at("tasks")[0].at("classes").size(), 4u);
  EXPECT_EQ(j.at("tasks")[2].at("classes").size(), 3u);
  EXPECT_EQ(j.at("tasks")[1].at("train_images"), 3 * 12);
  EXPECT_EQ(j.at("tasks")[2].at("test_images_seen"), 10 * 12);
  EXPECT_FALSE(fs::exists(root_ + "/run")) << "a dry run writes nothing";
}

TEST_F(TrainCommand, TrainEvalExportForwardAndResume) {
  const std::string run = root_ + "/run";
  // Two tasks, then resume for the third.
  test::RunResult r = test::run_sdlora("train --config " + config_ + " --out " + run +
                                       " --max-tasks 2 --device cpu");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(cl::last_finished_task(run), 1);
  // Off a terminal, progress comes as plain lines: task, epoch, batch, loss, images/s, ETA.
  EXPECT_NE(r.output.find("task 1 (2/3) epoch 2/2 batch"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("img/s ETA"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find('\r'), std::string::npos) << "no bar redrawing off a terminal";
  r = test::run_sdlora("train --config " + config_ + " --out " + run + " --device cpu");
  EXPECT_NE(r.exit_code, 0) << "a second run into the same folder must be refused";
  EXPECT_NE(r.output.find("--resume"), std::string::npos) << r.output;
  r = test::run_sdlora("train --resume " + run);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resumed after task 1"), std::string::npos) << r.output;

  std::ifstream in(run + "/metrics.json");
  const auto metrics = nlohmann::json::parse(in);
  EXPECT_EQ(metrics.at("method"), "sdlora-kd");
  EXPECT_EQ(metrics.at("tasks"), 3);
  ASSERT_EQ(metrics.at("acc_per_task").size(), 3u);
  ASSERT_EQ(metrics.at("kd").size(), 2u);  // decisions at tasks 1 and 2
  for (const char* f : {"config.json", "log.txt", "metrics.csv", "state.json",
                        "checkpoints/task_0.safetensors", "checkpoints/task_2.safetensors"})
    EXPECT_TRUE(fs::exists(run + "/" + f)) << f;

  // eval reproduces the run's accuracy after each task.
  for (int task = 0; task < 3; ++task) {
    r = test::run_sdlora("eval --run " + run + " --task " + std::to_string(task), true);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto e = nlohmann::json::parse(r.output);
    EXPECT_NEAR(e.at("accuracy").get<double>(),
                metrics.at("acc_per_task")[static_cast<size_t>(task)].get<double>(), 1e-9);
  }

  // export -> forward: the merged plain ViT gives the adapted model's logits.
  const std::string exported = root_ + "/model.safetensors";
  r = test::run_sdlora("export --run " + run + " --out " + exported);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const SafetensorsFile file = load_safetensors(exported);
  for (const auto& [name, t] : file.tensors)
    EXPECT_FALSE(SDLoRA::is_adapter_key(name)) << name << ": export should merge the adapters";
  EXPECT_EQ(file.tensors.at("head.weight").shape(), (Shape{10, 16}));
  const Tensor images = test::random_tensor({5, 1, 8, 8}, 3, 0.0, 1.0);
  save_safetensors(root_ + "/images.safetensors", {{"images", images}});
  r = test::run_sdlora("forward --weights " + exported + " --heads 2 --input " + root_ +
                       "/images.safetensors --output " + root_ + "/out.safetensors --device cpu");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Tensor logits = load_safetensors(root_ + "/out.safetensors").tensors.at("logits");
  cl::RunModel m = cl::load_run_model(run);
  NoGradGuard no_grad;
  const Tensor want = m.head->forward(m.backbone->forward(images).features).data();
  EXPECT_TRUE(test::all_close(logits, want, 1e-4, 1e-5, "exported logits"));
}

TEST_F(TrainCommand, ErrorsNameTheProblem) {
  struct Case {
    std::string args, expect;
  };
  const std::vector<Case> cases = {
      {"train --config " + config_ + " --out " + root_ + "/r --set colour=red", "colour"},
      {"train --config " + config_ + " --out " + root_ + "/r --set epochs=many", "epochs"},
      {"train --config " + config_ + " --out " + root_ + "/r --set method=ewc", "method"},
      {"train --config /nonexistent.json --out " + root_ + "/r", "/nonexistent.json"},
      {"train --config " + config_ + " --out " + root_ + "/r --set data_path=/nonexistent/fm",
       "/nonexistent/fm"},
      {"train --resume " + root_ + "/nothing", "nothing"},
      {"eval --run " + root_ + "/nothing", "nothing"},
      {"export --run " + root_ + " --out " + root_ + "/x.safetensors", "config.json"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args);
    const test::RunResult r = test::run_sdlora(c.args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << r.output;
  }
}

TEST(DemoCommand, ReducedRunEndToEnd) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST is not installed (Debian package dataset-fashion-mnist; "
                    "scripts/test.sh installs it)";
  const std::string out = test::temp_path("demo");
  fs::remove_all(out);
  const test::RunResult r = test::run_sdlora(
      "demo --out " + out +
      " --methods sdlora,sdlora-kd,linear-probe --set train_per_class=40 --set test_per_class=20 "
      "--set init_epoch=1 --set epochs=1 --device cpu");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* m : {"sdlora", "sdlora-kd", "linear-probe"}) {
    SCOPED_TRACE(m);
    std::ifstream in(out + "/" + m + "/metrics.json");
    ASSERT_TRUE(in.good());
    const auto j = nlohmann::json::parse(in);
    EXPECT_EQ(j.at("tasks"), 5);
    EXPECT_EQ(j.at("acc_matrix").size(), 5u);
    // The method's row of the comparison table (the name padded, so sdlora is not sdlora-kd).
    EXPECT_NE(r.output.find(std::string("\n") + m + " "), std::string::npos) << r.output;
  }
  EXPECT_NE(r.output.find("SD-LoRA accuracy matrix"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("SD-LoRA-KD decisions"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(out + "/summary.json"));
  fs::remove_all(out);
}

TEST(Demo, BuiltInConfigIsTheShippedFile) {
  const cl::Config file = cl::load_config(SDLORA_CONFIGS_DIR "/demo-fashion-mnist.json");
  EXPECT_EQ(apps::demo_config().to_json(), file.to_json());
  EXPECT_EQ(file.dataset, "fashion-mnist");
  EXPECT_EQ(file.init_cls, 2);
  EXPECT_EQ(file.increment, 2);
  EXPECT_EQ(file.seed, 1993);
  EXPECT_EQ(apps::demo_methods().size(), 5u);
  // The backbone the demo names is committed and matches the config's shape.
  const std::string weights = apps::locate_project_file(file.weights);
  ASSERT_TRUE(std::filesystem::exists(weights)) << weights;
  ViTConfig c = file.vit_config();
  ViT vit(c);
  EXPECT_NO_THROW(vit.load_pretrained(weights));
}

}  // namespace
}  // namespace sdlora
