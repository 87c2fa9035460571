// `sdlora forward` end to end: the real binary runs checkpoints the tests write (a plain ViT, the
// same with SD-LoRA adapters between tasks and mid-task), and its output files are compared with
// the library's forward computed here; then the PyTorch-made fixture; then the failure paths.
#include <gtest/gtest.h>

#include <memory>

#include "nn/safetensors.h"
#include "nn/sdlora.h"
#include "tensor/ops.h"
#include "tests/apps/test_app_util.h"
#include "tests/common/test_util.h"

namespace sdlora {
namespace {

using test::all_close;
using test::host_values;
using test::random_tensor;
using test::run_sdlora;
using test::TempFile;

std::string quote(const std::string& s) { return "'" + s + "'"; }

std::string forward_args(const std::string& weights, int64_t heads, const std::string& input,
                         const std::string& output, const std::string& extra = "") {
  return "forward --device cpu --weights " + quote(weights) + " --heads " + std::to_string(heads) +
         " --input " + quote(input) + " --output " + quote(output) + " " + extra;
}

using test::rel_close;

ViTOutput reference(const ViT& vit, const Tensor& images) {
  NoGradGuard no_grad;
  return vit.forward(images);
}

void save_images(const std::string& path, const Tensor& images) {
  save_safetensors(path, {{"images", images}});
}

// Two finished tasks (ranks 3 and 2, random factors, non-zero beta and magnitudes away from their
// initial value), optionally a third task running (rank 2, non-zero current pair).
void make_adapters(SDLoRA& ad, bool mid_task, Generator& gen) {
  auto randomise_up = [&] {
    for (int64_t p = 0; p < ad.num_projections(); ++p) {
      Tensor up = ad.projection(p).current_up().data();
      up.copy_(gen.normal(up.shape(), 0.0, 0.3));
    }
  };
  for (int64_t rank : {3, 2}) {
    ad.begin_task(rank, gen);
    randomise_up();
    ad.end_task();
  }
  for (int64_t p = 0; p < ad.num_projections(); ++p) {
    ad.projection(p).add_to_beta(0, 0.25 + 0.01 * static_cast<double>(p));
    ad.projection(p).add_to_beta(1, -0.15);
  }
  if (mid_task) {
    ad.begin_task(2, gen);
    randomise_up();
  }
  const std::vector<double> values{0.9, 1.3, 0.7};
  for (size_t k = 0; k < ad.alphas().size(); ++k) {
    Tensor a = ad.alphas()[k].data();
    fill_(a, values[k]);
  }
}

TEST(ForwardCommand, PlainViTMatchesTheLibrary) {
  for (int64_t classes : {5, 0}) {
    SCOPED_TRACE("classes " + std::to_string(classes));
    Generator gen(11);
    ViT vit(test::tiny_vit_config(classes));
    vit.init_weights(gen);
    const Tensor images = random_tensor({3, 3, 8, 8}, 5, 0.0, 1.0);
    TempFile weights("plain_w.safetensors"), input("plain_in.safetensors"),
        output("plain_out.safetensors");
    save_safetensors(weights.path(), vit.state_dict());
    save_images(input.path(), images);

    // --batch-size 2 splits the 3 images into two passes.
    const test::RunResult r =
        run_sdlora(forward_args(weights.path(), 2, input.path(), output.path(), "--batch-size 2"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const SafetensorsFile out = load_safetensors(output.path());
    const ViTOutput want = reference(vit, images);
    ASSERT_TRUE(out.tensors.count("features"));
    EXPECT_TRUE(
        all_close(out.tensors.at("features"), want.features.data(), 1e-5, 1e-6, "features"));
    if (classes > 0) {
      ASSERT_TRUE(out.tensors.count("logits"));
      EXPECT_TRUE(all_close(out.tensors.at("logits"), want.logits.data(), 1e-5, 1e-6, "logits"));
    } else {
      EXPECT_FALSE(out.tensors.count("logits")) << "a model without a head writes no logits";
    }
    EXPECT_EQ(out.metadata.at("adapters"), "none");
  }
}

TEST(ForwardCommand, AdaptedCheckpointMatchesTheAdaptedForward) {
  for (bool mid_task : {false, true}) {
    SCOPED_TRACE(mid_task ? "mid-task (current pair saved)" : "between tasks");
    Generator gen(21);
    ViT vit(test::tiny_vit_config(5));
    vit.init_weights(gen);
    SDLoRA ad(vit, SDLoRAMode::kOfficial);
    make_adapters(ad, mid_task, gen);
    ASSERT_EQ(ad.num_components(), 2);

    std::map<std::string, Tensor> tensors = vit.state_dict();
    for (auto& [name, t] : ad.state_dict(mid_task)) tensors[name] = t;
    TempFile weights("ad_w.safetensors"), input("ad_in.safetensors"),
        merged("ad_merged.safetensors"), unmerged("ad_unmerged.safetensors");
    save_safetensors(weights.path(), tensors, ad.metadata(mid_task));
    const Tensor images = random_tensor({4, 3, 8, 8}, 7, 0.0, 1.0);
    save_images(input.path(), images);

    const ViTOutput want = reference(vit, images);  // the adapted forward, adapters unmerged
    // The adapters change the function, so this test can tell a checkpoint read without them.
    ViT plain(test::tiny_vit_config(5));
    plain.load_state_dict(vit.state_dict());
    const ViTOutput base = reference(plain, images);
    ASSERT_FALSE(rel_close(base.logits.data(), want.logits.data(), 1e-2, "base vs adapted"));

    test::RunResult r = run_sdlora(forward_args(weights.path(), 2, input.path(), merged.path()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = run_sdlora(forward_args(weights.path(), 2, input.path(), unmerged.path(), "--unmerged"));
    ASSERT_EQ(r.exit_code, 0) << r.output;

    for (const std::string& path : {merged.path(), unmerged.path()}) {
      const SafetensorsFile out = load_safetensors(path);
      const std::string how = out.metadata.at("evaluation");
      EXPECT_TRUE(
          rel_close(out.tensors.at("features"), want.features.data(), 1e-5, how + " features"));
      EXPECT_TRUE(rel_close(out.tensors.at("logits"), want.logits.data(), 1e-5, how + " logits"));
      const std::string described = out.metadata.at("adapters");
      EXPECT_NE(described.find("2 frozen components"), std::string::npos) << described;
      EXPECT_EQ(described.find("current pair") != std::string::npos, mid_task) << described;
    }
  }
}

// The PyTorch-made fixture (tests/nn/make_fixtures.py): a tiny ViT with SD-LoRA during task 2,
// its inputs and PyTorch's features and logits. The binary gets the model and the images as two
// files, as a user would.
TEST(ForwardCommand, PyTorchFixtureMatches) {
  for (const std::string mode : {"paper", "official"}) {
    SCOPED_TRACE(mode);
    const SafetensorsFile fx = load_safetensors(std::string(SDLORA_NN_FIXTURES) + "/sdlora_task2_" +
                                                mode + ".safetensors");
    std::map<std::string, Tensor> model;
    for (const auto& [name, t] : fx.tensors)
      if (name.rfind("input.", 0) != 0 && name.rfind("expected.", 0) != 0) model[name] = t;
    TempFile weights("fx_w.safetensors"), input("fx_in.safetensors"), output("fx_out.safetensors");
    save_safetensors(weights.path(), model, fx.metadata);
    save_images(input.path(), fx.tensors.at("input.images"));
    const int64_t heads = std::stoll(fx.metadata.at("num_heads"));
    const test::RunResult r =
        run_sdlora(forward_args(weights.path(), heads, input.path(), output.path()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const SafetensorsFile out = load_safetensors(output.path());
    EXPECT_TRUE(rel_close(out.tensors.at("features"), fx.tensors.at("expected.features"), 1e-4,
                          "features"));
    EXPECT_TRUE(
        rel_close(out.tensors.at("logits"), fx.tensors.at("expected.logits"), 1e-4, "logits"));
  }
}

// ---- failure paths: non-zero exit and a message naming the problem

class ForwardErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    Generator gen(3);
    ViT vit(test::tiny_vit_config(5));
    vit.init_weights(gen);
    save_safetensors(weights_.path(), vit.state_dict());
    save_images(input_.path(), random_tensor({2, 3, 8, 8}, 9, 0.0, 1.0));
  }
  // Expects failure with every one of `needles` in the output.
  void expect_failure(const std::string& args, const std::vector<std::string>& needles) {
    const test::RunResult r = run_sdlora(args);
    EXPECT_NE(r.exit_code, 0) << r.output;
    for (const std::string& n : needles)
      EXPECT_NE(r.output.find(n), std::string::npos) << "'" << n << "' not in: " << r.output;
  }
  TempFile weights_{"err_w.safetensors"}, input_{"err_in.safetensors"},
      output_{"err_out.safetensors"};
};

TEST_F(ForwardErrors, MissingWeightsFile) {
  const std::string missing = weights_.path() + ".nope";
  expect_failure(forward_args(missing, 2, input_.path(), output_.path()), {"--weights", missing});
}

TEST_F(ForwardErrors, MissingInputFile) {
  const std::string missing = input_.path() + ".nope";
  expect_failure(forward_args(weights_.path(), 2, missing, output_.path()), {"--input", missing});
}

TEST_F(ForwardErrors, HeadsThatDoNotDivideTheWidth) {
  expect_failure(forward_args(weights_.path(), 3, input_.path(), output_.path()),
                 {"--heads 3", "width 16"});
}

TEST_F(ForwardErrors, WrongImageSize) {
  TempFile big("err_big.safetensors");
  save_images(big.path(), random_tensor({2, 3, 16, 16}, 9, 0.0, 1.0));
  expect_failure(forward_args(weights_.path(), 2, big.path(), output_.path()),
                 {"images", "[2, 3, 16, 16]", "(B, 3, 8, 8)"});
  TempFile gray("err_gray.safetensors");
  save_images(gray.path(), random_tensor({2, 1, 8, 8}, 9, 0.0, 1.0));
  expect_failure(forward_args(weights_.path(), 2, gray.path(), output_.path()),
                 {"images", "[2, 1, 8, 8]"});
}

TEST_F(ForwardErrors, InputWithoutImages) {
  TempFile other("err_other.safetensors");
  save_safetensors(other.path(), {{"pixels", random_tensor({2, 3, 8, 8}, 9)}});
  expect_failure(forward_args(weights_.path(), 2, other.path(), output_.path()),
                 {"'images'", "pixels"});
}

TEST_F(ForwardErrors, IntegerImages) {
  TempFile bytes("err_u8.safetensors");
  save_safetensors(bytes.path(), {{"images", Tensor::zeros({2, 3, 8, 8}, DType::kUInt8)}});
  expect_failure(forward_args(weights_.path(), 2, bytes.path(), output_.path()),
                 {"images", "uint8"});
}

TEST_F(ForwardErrors, NotAViTCheckpoint) {
  // The images file is no checkpoint: the first missing tensor is named.
  expect_failure(forward_args(input_.path(), 2, input_.path(), output_.path()),
                 {"patch_embed.proj.weight", input_.path()});
}

TEST_F(ForwardErrors, AdaptersWithoutModeMetadata) {
  Generator gen(4);
  ViT vit(test::tiny_vit_config(5));
  vit.init_weights(gen);
  SDLoRA ad(vit, SDLoRAMode::kPaper);
  make_adapters(ad, false, gen);
  std::map<std::string, Tensor> tensors = vit.state_dict();
  for (auto& [name, t] : ad.state_dict()) tensors[name] = t;
  TempFile w("err_nomode.safetensors");
  save_safetensors(w.path(), tensors);  // no metadata
  expect_failure(forward_args(w.path(), 2, input_.path(), output_.path()),
                 {"sdlora_mode", "--sdlora-mode"});
  // Supplying the mode makes it work.
  const test::RunResult r =
      run_sdlora(forward_args(w.path(), 2, input_.path(), output_.path(), "--sdlora-mode paper"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(ForwardErrors, UnknownAndMissingFlags) {
  expect_failure(forward_args(weights_.path(), 2, input_.path(), output_.path(), "--bogus 1"),
                 {"--bogus"});
  expect_failure("forward --weights " + quote(weights_.path()) + " --input " +
                     quote(input_.path()) + " --output " + quote(output_.path()),
                 {"--heads"});
  expect_failure("", {"subcommand"});
  expect_failure("nonsense", {"nonsense"});
}

}  // namespace
}  // namespace sdlora
