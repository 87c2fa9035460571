// Backbone pre-training on rendered glyphs (pretrain/pretrain.h) at a tiny size: the loss falls,
// the file loads strictly as a timm ViT and records its accuracy. (The family split itself:
// tests/pretrain/test_glyphs.cpp.)
#include <gtest/gtest.h>

#include <filesystem>
#include <numeric>

#include "nn/safetensors.h"
#include "pretrain/pretrain.h"
#include "tests/common/test_util.h"

namespace sdlora {
namespace {

const char* kFontDir = "/usr/share/fonts/truetype/dejavu";

TEST(Pretrain, TinyRunLearnsAndSavesATimmCheckpoint) {
  if (!std::filesystem::exists(kFontDir))
    GTEST_SKIP() << kFontDir << " missing (Debian package fonts-dejavu-core)";
  pretrain::PretrainOptions o;
  const test::TempFile out("pretrain.safetensors");
  o.out = out.path();
  o.font_dirs = {kFontDir};
  o.charset = "digits10";
  o.train_images = 2400;
  o.test_images = 200;
  o.epochs = 2;
  o.batch_size = 32;
  o.lr = 3e-3;
  o.test_fraction = 0.3;
  o.vit.image_size = 16;
  o.vit.patch_size = 4;
  o.vit.embed_dim = 32;
  o.vit.depth = 1;
  o.vit.num_heads = 2;
  o.vit.mlp_ratio = 2.0;
  o.log_every = 0;
  const pretrain::PretrainResult r = pretrain::pretrain_glyph_vit(o);
  ASSERT_EQ(r.steps, 2 * 2400 / 32);
  ASSERT_EQ(static_cast<int64_t>(r.losses.size()), r.steps);
  const auto mean = [](auto b, auto e) {
    return std::accumulate(b, e, 0.0) / static_cast<double>(e - b);
  };
  const double first = mean(r.losses.begin(), r.losses.begin() + 10);
  const double last = mean(r.losses.end() - 10, r.losses.end());
  EXPECT_LT(last, first - 0.3) << "the glyph loss did not fall";
  // At this size the accuracies are near chance; the committed backbone's are in README.md.
  // The reported split is the library's family split.
  const auto fonts = pretrain::FontLibrary::load(o.font_dirs, o.charset);
  EXPECT_EQ(r.train_families + r.test_families, static_cast<int64_t>(fonts->families().size()));
  EXPECT_EQ(r.test_families,
            static_cast<int64_t>(pretrain::glyph_test_families(*fonts, o.test_fraction, 0).size()));

  // A strict timm load of the file into the same architecture.
  ViTConfig c = o.vit;
  c.num_classes = 10;
  ViT vit(c);
  EXPECT_NO_THROW(vit.load_pretrained(o.out));
  const SafetensorsFile f = load_safetensors(o.out);
  EXPECT_TRUE(f.tensors.count("patch_embed.proj.weight"));
  EXPECT_TRUE(f.tensors.count("blocks.0.attn.qkv.weight"));
  EXPECT_NEAR(std::stod(f.metadata.at("heldout_accuracy")), r.heldout_accuracy, 1e-4);
  EXPECT_EQ(f.metadata.at("charset"), "digits10");
}

}  // namespace
}  // namespace sdlora
