// The ViT with SD-LoRA on CUDA: the PyTorch fixture (logits, loss, every trainable gradient,
// both modes) and the CPU results, merging, task boundaries and checkpoints across devices.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "autograd/functions.h"
#include "nn/safetensors.h"
#include "nn/sdlora.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"

namespace sdlora {
namespace {

using test::all_close;
using test::host_values;

using test::rel_close;

struct Model {
  SafetensorsFile file;
  std::unique_ptr<ViT> vit;
  std::unique_ptr<SDLoRA> ad;
  int64_t col_begin = 0, col_end = 0;
  const Tensor& t(const std::string& name) const { return file.tensors.at(name); }
};

Model load_fixture(const std::string& mode, Device device) {
  Model m;
  m.file =
      load_safetensors(std::string(SDLORA_NN_FIXTURES) + "/sdlora_task2_" + mode + ".safetensors");
  auto meta = [&](const char* k) { return std::stoll(m.file.metadata.at(k)); };
  ViTConfig c;
  c.image_size = meta("image_size");
  c.patch_size = meta("patch_size");
  c.in_channels = meta("in_channels");
  c.embed_dim = meta("embed_dim");
  c.depth = meta("depth");
  c.num_heads = meta("num_heads");
  c.mlp_ratio = static_cast<double>(meta("mlp_ratio"));
  c.num_classes = meta("num_classes");
  m.col_begin = meta("loss_col_begin");
  m.col_end = meta("loss_col_end");
  m.vit = std::make_unique<ViT>(c, device);
  std::map<std::string, Tensor> backbone;
  for (const auto& [name, t] : m.file.tensors)
    if (!SDLoRA::is_adapter_key(name) && name.rfind("input.", 0) != 0 &&
        name.rfind("expected.", 0) != 0)
      backbone[name] = t;
  m.vit->load_state_dict(backbone);
  m.ad = std::make_unique<SDLoRA>(*m.vit, parse_sdlora_mode(mode));
  m.ad->load_state_dict(m.file.tensors, m.file.metadata);
  return m;
}

struct Result {
  Tensor logits, loss;
  std::map<std::string, Tensor> grads;
};

Result run_step(Model& m) {
  const Device device = m.vit->device();
  const ViTOutput out = m.vit->forward(m.t("input.images").to(device));
  const Var loss =
      cross_entropy(out.logits, m.t("input.labels").to(device), m.col_begin, m.col_end);
  backward(loss);
  Result r{out.logits.data().to(Device::cpu()), loss.data().reshape({1}).to(Device::cpu()), {}};
  for (auto& [name, v] : m.ad->named_trainable_parameters())
    if (name.rfind("sdlora.alpha", 0) != 0) r.grads[name] = v.grad().to(Device::cpu());
  std::vector<Tensor> dalpha;
  for (const Var& a : m.ad->alphas()) dalpha.push_back(a.grad().to(Device::cpu()));
  r.grads["sdlora.alpha"] = cat(dalpha, 0);
  for (const char* name : {"head.weight", "head.bias"})
    r.grads[name] = m.vit->find(name).grad().to(Device::cpu());
  return r;
}

class GpuSDLoRAFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuSDLoRAFixture, MatchesPyTorchAndTheCpu) {
  SDLORA_REQUIRE_GPU();
  const test::Tf32Scope fp32(false);
  Model cuda = load_fixture(GetParam(), Device::cuda());
  EXPECT_TRUE(cuda.vit->block(1).attn().qkv().weight().device().is_cuda());
  const Result g = run_step(cuda);
  Model cpu = load_fixture(GetParam(), Device::cpu());
  const Result c = run_step(cpu);

  EXPECT_TRUE(rel_close(g.logits, cuda.t("expected.logits"), 1e-4, "logits"));
  EXPECT_TRUE(rel_close(g.loss, cuda.t("expected.loss"), 1e-4, "loss"));
  EXPECT_TRUE(rel_close(g.logits, c.logits, 1e-4, "logits vs cpu"));
  ASSERT_EQ(g.grads.size(), 11u);
  for (const auto& [name, grad] : g.grads) {
    EXPECT_TRUE(rel_close(grad, cuda.t("expected.grad." + name), 1e-4, "grad " + name));
    EXPECT_TRUE(rel_close(grad, c.grads.at(name), 1e-4, "grad " + name + " vs cpu"));
  }
}

TEST_P(GpuSDLoRAFixture, MergedForwardEqualsTheAdaptedOne) {
  SDLORA_REQUIRE_GPU();
  const test::Tf32Scope fp32(false);
  Model m = load_fixture(GetParam(), Device::cuda());
  NoGradGuard no_grad;
  const Tensor x = m.t("input.images").to(Device::cuda());
  const std::unique_ptr<ViT> merged = m.ad->merged_vit();
  EXPECT_TRUE(merged->device().is_cuda());
  EXPECT_TRUE(rel_close(merged->forward(x).logits.data(), m.vit->forward(x).logits.data(), 1e-5,
                        "merged on cuda"));
  EXPECT_TRUE(rel_close(m.ad->merged_qkv_weight(1), m.t("expected.merged.blocks.1.attn.qkv.weight"),
                        1e-5, "merged weight"));
}

INSTANTIATE_TEST_SUITE_P(Modes, GpuSDLoRAFixture, ::testing::Values("paper", "official"),
                         [](const auto& info) { return info.param; });

TEST(GpuSDLoRA, TaskBoundariesKDAndCheckpointsAcrossDevices) {
  SDLORA_REQUIRE_GPU();
  const test::Tf32Scope fp32(false);
  Model g = load_fixture("paper", Device::cuda());
  Model c = load_fixture("paper", Device::cpu());
  const Tensor x = g.t("input.images");
  NoGradGuard no_grad;

  // KD on the device: the same fits as on the CPU.
  const KDDecision dg = g.ad->kd_decide(9e-4), dc = c.ad->kd_decide(9e-4);
  ASSERT_EQ(dg.residuals.size(), dc.residuals.size());
  for (size_t i = 0; i < dg.residuals.size(); ++i)
    EXPECT_NEAR(dg.residuals[i], dc.residuals[i], 1e-9);

  // end_task, then a new task: Philox draws agree across devices, so do the new down factors.
  g.ad->end_task();
  c.ad->end_task();
  Generator gg(5), gc(5);
  g.ad->begin_task(3, gg);
  c.ad->begin_task(3, gc);
  EXPECT_EQ(g.ad->projection(2).current_down().data().to(Device::cpu()).to_vector<float>(),
            c.ad->projection(2).current_down().data().to_vector<float>());
  EXPECT_TRUE(rel_close(g.vit->forward(x.to(Device::cuda())).logits.data(),
                        c.vit->forward(x).logits.data(), 1e-4, "after begin_task"));

  // A checkpoint written from the device loads on the CPU.
  const std::string path = test::temp_path("gpu_vit.safetensors");
  g.ad->save(path, true);
  Model c2 = load_fixture("paper", Device::cpu());
  c2.ad->load(path);
  EXPECT_TRUE(rel_close(c2.vit->forward(x).logits.data(),
                        g.vit->forward(x.to(Device::cuda())).logits.data(), 1e-4, "reloaded"));
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace sdlora
