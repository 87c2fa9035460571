// What is scored, saved, resumed and exported after a task is the function the task trained:
// for sdlora, sdlora-rr and sdlora-kd in both modes, every task's checkpoint (unmerged, merged
// in-process and merged through `sdlora export` + `sdlora forward`) gives the in-training
// model's logits on a fixed batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "apps/model_io.h"
#include "autograd/var.h"
#include "cl/head.h"
#include "cl/run_dir.h"
#include "cl/run_model.h"
#include "nn/safetensors.h"
#include "tensor/ops.h"
#include "tests/apps/test_app_util.h"
#include "tests/cl/cl_test_util.h"
#include "tests/common/test_util.h"

namespace sdlora {
namespace {

using cl::test::synthetic_datasets;
using cl::test::temp_dir;
using cl::test::tiny_config;

Tensor logits_of(const ViT& vit, const cl::GrowingHead& head, const Tensor& x) {
  NoGradGuard no_grad;
  return head.forward(vit.forward(x).features).data().clone();
}

class Fidelity : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(Fidelity, CheckpointsAndExportsGiveTheTrainedLogits) {
  const auto& [method, mode] = GetParam();
  cl::Config c = tiny_config(method);
  c.sdlora_mode = mode;
  const cl::Datasets d = synthetic_datasets();
  const Tensor x = test::random_tensor({5, 1, 8, 8}, 91, 0.0, 1.0);
  std::map<int64_t, Tensor> trained;
  cl::RunOptions o;
  o.run_dir = temp_dir("fidelity_" + method + "_" + mode);
  o.after_training = [&](int64_t t, const ViT& vit, const cl::GrowingHead& head) {
    trained[t] = logits_of(vit, head, x);
  };
  auto vit = cl::make_backbone(c);
  const cl::RunResult r = cl::run_training(c, d, *vit, o);
  ASSERT_EQ(trained.size(), 3u);
  for (int64_t t = 0; t < 3; ++t) {
    SCOPED_TRACE("task " + std::to_string(t));
    const bool absorbed = r.tasks[static_cast<size_t>(t)].end.kd.redundant;
    // KD may absorb a component: then the function changes by the fit's residual only.
    const double tol = absorbed ? 1e-3 : 1e-5;
    cl::RunModel m = cl::load_run_model(o.run_dir, t, "cpu");
    const SafetensorsFile ckpt = load_safetensors(cl::checkpoint_path(o.run_dir, t));
    if (!absorbed) {
      EXPECT_EQ(ckpt.metadata.at("sdlora_current"), "true");
    }
    EXPECT_TRUE(test::all_close(logits_of(*m.backbone, *m.head, x), trained[t], tol, tol,
                                "unmerged checkpoint"));
    // The merged export, in-process and through the binary.
    const cl::ExportedModel e = cl::export_merged(m);
    const std::string path = o.run_dir + "/export_" + std::to_string(t) + ".safetensors";
    save_safetensors(path, e.tensors, e.metadata);
    apps::LoadedModel loaded = apps::load_model(path, c.num_heads, Device::cpu());
    const std::unique_ptr<ViT> merged = loaded.take_inference_model();
    {
      NoGradGuard no_grad;
      EXPECT_TRUE(
          test::all_close(merged->forward(x).logits.data(), trained[t], tol, tol, "merged export"));
    }
    const std::string in = o.run_dir + "/images.safetensors", out = o.run_dir + "/out.safetensors";
    save_safetensors(in, {{"images", x}});
    const test::RunResult run = test::run_sdlora("forward --weights " + path + " --input " + in +
                                                 " --output " + out + " --device cpu");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_TRUE(test::all_close(load_safetensors(out).tensors.at("logits"), trained[t], tol, tol,
                                "sdlora forward on the export"));
  }
  std::filesystem::remove_all(o.run_dir);
}

INSTANTIATE_TEST_SUITE_P(MethodsAndModes, Fidelity,
                         ::testing::Combine(::testing::Values("sdlora", "sdlora-rr", "sdlora-kd"),
                                            ::testing::Values("paper", "official")),
                         [](const auto& info) {
                           std::string name =
                               std::get<0>(info.param) + "_" + std::get<1>(info.param);
                           for (char& ch : name)
                             if (ch == '-') ch = '_';
                           return name;
                         });

// `sdlora forward` takes the head count from the export's metadata; a --heads that disagrees is
// an error, since a wrong count silently gives wrong outputs.
TEST(Fidelity, ForwardReadsTheExportsHeadCount) {
  const cl::Config c = tiny_config("sdlora");
  const cl::Datasets d = synthetic_datasets();
  cl::RunOptions o;
  o.run_dir = temp_dir("fidelity_heads");
  cl::Config one = c;
  one.init_epoch = 1;
  auto vit = cl::make_backbone(one);
  o.max_tasks = 1;
  cl::run_training(one, d, *vit, o);
  const cl::ExportedModel e = cl::export_merged(cl::load_run_model(o.run_dir, 0, "cpu"));
  EXPECT_EQ(e.metadata.at("num_heads"), std::to_string(c.num_heads));
  // The class order of the seen classes only (2 after task 0).
  const std::string order = e.metadata.at("class_order");
  EXPECT_EQ(std::count(order.begin(), order.end(), ','), 1) << order;
  const std::string path = o.run_dir + "/export.safetensors";
  save_safetensors(path, e.tensors, e.metadata);
  const std::string in = o.run_dir + "/images.safetensors", out = o.run_dir + "/out.safetensors";
  save_safetensors(in, {{"images", test::random_tensor({2, 1, 8, 8}, 3, 0.0, 1.0)}});
  const std::string base = "forward --weights " + path + " --input " + in + " --output " + out;
  EXPECT_EQ(test::run_sdlora(base + " --heads 2").exit_code, 0);
  const test::RunResult wrong = test::run_sdlora(base + " --heads 4");
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.output.find("--heads 4 disagrees"), std::string::npos) << wrong.output;
  EXPECT_NE(wrong.output.find("num_heads 2"), std::string::npos) << wrong.output;

  // `sdlora export` writes float32 by default and bfloat16 on request; `sdlora forward` reads
  // both (no --heads: the metadata has it), the bf16 file within bf16 rounding of the float32 one.
  const std::string f32 = o.run_dir + "/f32.safetensors", b16 = o.run_dir + "/b16.safetensors";
  ASSERT_EQ(test::run_sdlora("export --run " + o.run_dir + " --out " + f32).exit_code, 0);
  ASSERT_EQ(
      test::run_sdlora("export --run " + o.run_dir + " --out " + b16 + " --dtype bf16").exit_code,
      0);
  // The loader converts bfloat16 to float32, so the file's own size shows its dtype: 2 bytes
  // per value against 4 (the header aside).
  EXPECT_LT(std::filesystem::file_size(b16), 0.6 * std::filesystem::file_size(f32));
  const std::string out32 = o.run_dir + "/o32.safetensors", out16 = o.run_dir + "/o16.safetensors";
  ASSERT_EQ(test::run_sdlora("forward --weights " + f32 + " --input " + in + " --output " + out32)
                .exit_code,
            0);
  ASSERT_EQ(test::run_sdlora("forward --weights " + b16 + " --input " + in + " --output " + out16)
                .exit_code,
            0);
  EXPECT_TRUE(test::rel_close(load_safetensors(out16).tensors.at("logits"),
                              load_safetensors(out32).tensors.at("logits"), 3e-2,
                              "logits of the bf16 export"));
  std::filesystem::remove_all(o.run_dir);
}

}  // namespace
}  // namespace sdlora
