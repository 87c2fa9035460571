// Checkpoint -> model: every size inferred from a timm-named state dict, and the errors that name
// the missing or inconsistent tensor.
#include <gtest/gtest.h>

#include <functional>

#include "apps/model_io.h"
#include "tests/apps/test_app_util.h"
#include "tests/common/test_util.h"

namespace sdlora {
namespace {

using test::error_of;

void expect_same_config(const ViTConfig& got, const ViTConfig& want) {
  EXPECT_EQ(got.image_size, want.image_size);
  EXPECT_EQ(got.patch_size, want.patch_size);
  EXPECT_EQ(got.in_channels, want.in_channels);
  EXPECT_EQ(got.embed_dim, want.embed_dim);
  EXPECT_EQ(got.depth, want.depth);
  EXPECT_EQ(got.num_heads, want.num_heads);
  EXPECT_EQ(got.mlp_hidden(), want.mlp_hidden());
  EXPECT_EQ(got.qkv_bias, want.qkv_bias);
  EXPECT_EQ(got.num_classes, want.num_classes);
}

TEST(InferViTConfig, RecoversEverySizeFromTheTensors) {
  std::vector<ViTConfig> configs;
  configs.push_back(test::tiny_vit_config(5));
  configs.push_back(test::tiny_vit_config(0));  // no head: features only
  ViTConfig odd = test::tiny_vit_config(7);     // non-square-friendly sizes, no qkv bias
  odd.image_size = 15;
  odd.patch_size = 5;
  odd.in_channels = 1;
  odd.embed_dim = 12;
  odd.depth = 3;
  odd.num_heads = 3;
  odd.mlp_ratio = 37.0 / 12.0;  // hidden 37: the ratio must map back exactly
  odd.qkv_bias = false;
  configs.push_back(odd);
  for (const ViTConfig& c : configs) {
    ViT vit(c);
    expect_same_config(apps::infer_vit_config(vit.state_dict(), c.num_heads, "test"), c);
  }
  ViTConfig base = vit_preset("vit_base_patch16_224");
  std::map<std::string, Tensor> shapes;  // shapes only: the tensors that matter, small dtype
  shapes["patch_embed.proj.weight"] = Tensor::empty({768, 3, 16, 16}, DType::kUInt8);
  shapes["pos_embed"] = Tensor::empty({1, 197, 768}, DType::kUInt8);
  shapes["cls_token"] = Tensor::empty({1, 1, 768}, DType::kUInt8);
  shapes["blocks.0.mlp.fc1.weight"] = Tensor::empty({3072, 768}, DType::kUInt8);
  shapes["blocks.0.attn.qkv.bias"] = Tensor::empty({2304}, DType::kUInt8);
  shapes["blocks.11.norm1.weight"] = Tensor::empty({768}, DType::kUInt8);
  shapes["head.weight"] = Tensor::empty({1000, 768}, DType::kUInt8);
  expect_same_config(apps::infer_vit_config(shapes, 12, "vit_b"), base);
}

TEST(InferViTConfig, ErrorsNameTheTensorOrTheFlag) {
  ViT vit(test::tiny_vit_config(5));
  auto sd = vit.state_dict();
  EXPECT_NE(
      error_of([&] { apps::infer_vit_config(sd, 3, "w.st"); }).find("--heads 3 does not divide"),
      std::string::npos);
  EXPECT_NE(error_of([&] { apps::infer_vit_config(sd, 0, "w.st"); }).find("--heads"),
            std::string::npos);

  auto no_patch = sd;
  no_patch.erase("patch_embed.proj.weight");
  const std::string e1 = error_of([&] { apps::infer_vit_config(no_patch, 2, "w.st"); });
  EXPECT_NE(e1.find("w.st"), std::string::npos) << e1;
  EXPECT_NE(e1.find("patch_embed.proj.weight"), std::string::npos) << e1;

  auto bad_pos = sd;
  bad_pos["pos_embed"] = Tensor::zeros({1, 6, 16});  // 5 patches: no square grid
  const std::string e2 = error_of([&] { apps::infer_vit_config(bad_pos, 2, "w.st"); });
  EXPECT_NE(e2.find("pos_embed"), std::string::npos) << e2;

  // Layouts this ViT does not build are named as such, not as a bad grid.
  auto registers = sd;
  registers["reg_token"] = Tensor::zeros({1, 4, 16});
  registers["pos_embed"] = Tensor::zeros({1, 9, 16});  // 4 patches + class + 4 registers
  const std::string e3 = error_of([&] { apps::infer_vit_config(registers, 2, "w.st"); });
  EXPECT_NE(e3.find("register tokens"), std::string::npos) << e3;
  EXPECT_EQ(e3.find("square grid"), std::string::npos) << e3;
  auto no_class = sd;
  no_class.erase("cls_token");
  no_class["pos_embed"] = Tensor::zeros({1, 4, 16});  // patches only
  const std::string e4 = error_of([&] { apps::infer_vit_config(no_class, 2, "w.st"); });
  EXPECT_NE(e4.find("no cls_token"), std::string::npos) << e4;

  // A block index beyond any ViT names the tensor: never a depth to build, nor an exception from
  // the string library (past int64).
  for (const char* name :
       {"blocks.4096.norm1.weight", "blocks.99999999999999999999.norm1.weight"}) {
    auto deep = sd;
    deep[name] = Tensor::zeros({16});
    const std::string e = error_of([&] { apps::infer_vit_config(deep, 2, "w.st"); });
    EXPECT_NE(e.find(std::string("w.st: tensor '") + name + "' has block index"), std::string::npos)
        << e;
  }

  auto bad_width = sd;
  bad_width["pos_embed"] = Tensor::zeros({1, 5, 8});
  EXPECT_NE(error_of([&] { apps::infer_vit_config(bad_width, 2, "w.st"); }).find("pos_embed"),
            std::string::npos);
}

TEST(LoadModel, StrictBackboneErrorsNameTheFileAndTensor) {
  ViT vit(test::tiny_vit_config(5));
  SafetensorsFile file;
  file.tensors = vit.state_dict();
  file.tensors.erase("blocks.1.norm2.bias");
  file.tensors["extra.weight"] = Tensor::zeros({2});
  const std::string e = error_of([&] { apps::load_model(file, 2, "w.st"); });
  EXPECT_NE(e.find("w.st"), std::string::npos) << e;
  EXPECT_NE(e.find("blocks.1.norm2.bias"), std::string::npos) << e;
  EXPECT_NE(e.find("extra.weight"), std::string::npos) << e;
}

}  // namespace
}  // namespace sdlora
