// The ViT: timm's names and shapes for the presets and custom sizes, the forward against the
// PyTorch reference fixture (tests/nn/make_fixtures.py), and loading timm-shaped checkpoints,
// including the errors for wrong names and shapes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>

#include "autograd/functions.h"
#include "nn/safetensors.h"
#include "nn/sdlora.h"
#include "nn/vit.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"
#include "tests/common/tiny_vit.h"

namespace sdlora {
namespace {

using test::all_close;

using test::error_of;

std::string temp_path(const std::string& name) { return test::temp_path("vit_" + name); }

ViTConfig tiny_config(int64_t classes) { return test::tiny_vit_config(classes); }

int64_t count(const Module& m) {
  int64_t n = 0;
  for (auto& [name, v] : m.named_parameters()) n += v.numel();
  return n;
}

TEST(ViT, PresetsHaveTimmParameterCounts) {
  // timm's counts (with the 1000-class head): base 86,567,656; small 22,050,664; tiny 5,717,416.
  EXPECT_EQ(count(ViT(vit_preset("vit_tiny_patch16_224"))), 5717416);
  EXPECT_EQ(count(ViT(vit_preset("vit_small_patch16_224"))), 22050664);
  const ViTConfig base = vit_preset("vit_base_patch16_224", 0);
  EXPECT_EQ(base.embed_dim, 768);
  EXPECT_EQ(base.num_heads, 12);
  EXPECT_EQ(base.num_patches(), 196);
  EXPECT_DOUBLE_EQ(base.ln_eps, 1e-6);
  EXPECT_EQ(count(ViT(base)) + 768 * 1000 + 1000, 86567656);
  const std::string err = error_of([] { (void)vit_preset("vit_huge"); });
  EXPECT_NE(err.find("vit_huge"), std::string::npos);
  EXPECT_NE(err.find("vit_small_patch16_224"), std::string::npos);
}

TEST(ViT, CustomSizesUseTimmNamesAndShapes) {
  ViTConfig c = tiny_config(5);
  c.image_size = 12;
  c.patch_size = 3;
  c.in_channels = 1;
  c.mlp_ratio = 3.0;
  ViT vit(c);
  std::map<std::string, Shape> want{{"cls_token", {1, 1, 16}},
                                    {"pos_embed", {1, 17, 16}},
                                    {"patch_embed.proj.weight", {16, 1, 3, 3}},
                                    {"patch_embed.proj.bias", {16}},
                                    {"norm.weight", {16}},
                                    {"norm.bias", {16}},
                                    {"head.weight", {5, 16}},
                                    {"head.bias", {5}}};
  for (int i = 0; i < 2; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    want[b + "norm1.weight"] = want[b + "norm1.bias"] = {16};
    want[b + "norm2.weight"] = want[b + "norm2.bias"] = {16};
    want[b + "attn.qkv.weight"] = {48, 16};
    want[b + "attn.qkv.bias"] = {48};
    want[b + "attn.proj.weight"] = {16, 16};
    want[b + "attn.proj.bias"] = {16};
    want[b + "mlp.fc1.weight"] = {48, 16};
    want[b + "mlp.fc1.bias"] = {48};
    want[b + "mlp.fc2.weight"] = {16, 48};
    want[b + "mlp.fc2.bias"] = {16};
  }
  std::map<std::string, Shape> got;
  for (auto& [name, t] : vit.state_dict()) got[name] = t.shape();
  EXPECT_EQ(got, want);
  EXPECT_EQ(vit.named_parameters().front().first, "cls_token");

  const ViTOutput out = vit.forward(Tensor::zeros({2, 1, 12, 12}));
  EXPECT_EQ(out.features.shape(), (Shape{2, 16}));
  EXPECT_EQ(out.logits.shape(), (Shape{2, 5}));
  c.num_classes = 0;
  ViT headless(c);
  EXPECT_FALSE(headless.has_head());
  EXPECT_FALSE(headless.forward(Tensor::zeros({1, 1, 12, 12})).logits.defined());
}

TEST(ViT, InvalidConfigsAndInputsAreNamed) {
  ViTConfig c = tiny_config(0);
  c.image_size = 10;
  EXPECT_NE(error_of([&] { ViT v(c); }).find("image size 10"), std::string::npos);
  c = tiny_config(0);
  c.num_heads = 3;
  EXPECT_NE(error_of([&] { ViT v(c); }).find("heads 3"), std::string::npos);
  // Sizes beyond any ViT (found by fuzz_state: a ratio of 1e40 made the hidden width's
  // float-to-int conversion undefined) are refused before anything is derived from them.
  c = tiny_config(0);
  c.mlp_ratio = 1e40;
  EXPECT_NE(error_of([&] { c.validate(); }).find("MLP ratio 1e+40"), std::string::npos);
  c.mlp_ratio = std::numeric_limits<double>::infinity();
  EXPECT_NE(error_of([&] { c.validate(); }).find("2^31 or more hidden units"), std::string::npos);
  c = tiny_config(0);
  c.image_size = int64_t{1} << 40;
  c.patch_size = 1;
  EXPECT_NE(error_of([&] { c.validate(); }).find("beyond the supported sizes"), std::string::npos);
  ViT v(tiny_config(0));
  EXPECT_NE(error_of([&] {
              (void)v.forward(Tensor::zeros({1, 3, 16, 16}));
            }).find("(B, 3, 8, 8)"),
            std::string::npos);
}

TEST(ViT, InitWeightsFollowsTimm) {
  ViTConfig c = tiny_config(10);
  c.embed_dim = 64;
  c.num_heads = 4;
  ViT vit(c);
  Generator gen(7);
  vit.init_weights(gen);
  auto stddev = [](const Tensor& t) {
    const auto v = test::host_values(t);
    double s = 0;
    for (double x : v) s += x * x;
    return std::sqrt(s / static_cast<double>(v.size()));
  };
  EXPECT_NEAR(stddev(vit.block(0).attn().qkv().weight().data()), 0.02, 0.002);
  EXPECT_NEAR(stddev(vit.pos_embed().data()), 0.02, 0.003);
  EXPECT_LT(stddev(vit.cls_token().data()), 1e-5);
  EXPECT_EQ(stddev(vit.block(1).mlp().fc1().bias().data()), 0.0);
  EXPECT_EQ(vit.norm().weight().data().to_vector<float>(), std::vector<float>(64, 1.0f));
}

// ---- against PyTorch: the plain backbone of the SD-LoRA fixture

std::map<std::string, Tensor> backbone_of(const SafetensorsFile& f) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : f.tensors)
    if (!SDLoRA::is_adapter_key(name) && name.rfind("input.", 0) != 0 &&
        name.rfind("expected.", 0) != 0)
      out[name] = t;
  return out;
}

TEST(ViT, ForwardMatchesPyTorch) {
  const SafetensorsFile f =
      load_safetensors(std::string(SDLORA_NN_FIXTURES) + "/sdlora_task2_paper.safetensors");
  ViT vit(tiny_config(5));
  vit.load_state_dict(backbone_of(f));
  const ViTOutput out = vit.forward(f.tensors.at("input.images"));
  EXPECT_TRUE(all_close(out.features.data(), f.tensors.at("expected.base_features"), 1e-4, 1e-5,
                        "features"));
}

// ---- timm-shaped checkpoints

TEST(ViT, LoadsTimmCheckpointsAndNamesWrongTensors) {
  ViT src(tiny_config(5));
  Generator gen(1);
  src.init_weights(gen);
  const std::string path = temp_path("timm.safetensors");
  save_safetensors(path, src.state_dict(), {{"format", "pt"}});

  ViT same(tiny_config(5));
  same.load_pretrained(path);
  for (auto& [name, t] : src.state_dict())
    EXPECT_EQ(same.find(name).data().to_vector<float>(), t.to_vector<float>()) << name;

  ViT headless(tiny_config(0));  // a backbone for SD-LoRA ignores the published head
  headless.load_pretrained(path);
  EXPECT_EQ(headless.block(1).attn().qkv().bias().data().to_vector<float>(),
            src.block(1).attn().qkv().bias().data().to_vector<float>());

  // Wrong names and shapes: one error naming every one of them, with the file.
  auto state = src.state_dict();
  state["blocks.0.attn.qkv.weight"] = Tensor::zeros({16, 48});
  state["pos_embed"] = Tensor::zeros({1, 17, 16});
  state["blocks.1.attn.q.weight"] = state["blocks.1.attn.qkv.weight"];
  state.erase("blocks.1.attn.qkv.weight");
  save_safetensors(path, state);
  const std::string err = error_of([&] { ViT(tiny_config(5)).load_pretrained(path); });
  for (const char* s : {"timm.safetensors", "missing (1): blocks.1.attn.qkv.weight",
                        "unexpected (1): blocks.1.attn.q.weight",
                        "blocks.0.attn.qkv.weight (checkpoint [16, 48], model [48, 16])",
                        "pos_embed (checkpoint [1, 17, 16], model [1, 5, 16])"})
    EXPECT_NE(err.find(s), std::string::npos) << "missing '" << s << "' in:\n" << err;
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace sdlora
