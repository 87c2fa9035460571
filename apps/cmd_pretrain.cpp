// sdlora pretrain: trains the demo's small ViT backbone on glyphs rendered from the machine's
// fonts and writes it with its held-out accuracy (pretrain/pretrain.h).
//
//   sdlora pretrain [--out FILE] [--fonts DIR...] [--charset alnum62|upper36|digits10]
//                   [--images N] [--test-images N] [--epochs N | --steps N] [--batch-size N]
//                   [--lr X] [--weight-decay X] [--seed N] [--threads N] [--device cpu|cuda]
//                   [--image N] [--patch N] [--width N] [--depth N] [--heads N] [--mlp-ratio X]
//                   [--channels 1|3]
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "apps/commands.h"
#include "pretrain/pretrain.h"

namespace sdlora::apps {

Command add_pretrain_command(CLI::App& root) {
  auto o = std::make_shared<pretrain::PretrainOptions>();
  CLI::App* app = root.add_subcommand(
      "pretrain", "Pre-train the demo's ViT backbone on glyphs rendered from TrueType fonts");
  app->add_option("--out", o->out, "safetensors file to write (timm names + metadata)")
      ->capture_default_str();
  app->add_option("--fonts", o->font_dirs, "font folders, searched recursively for *.ttf/*.otf")
      ->capture_default_str();
  app->add_option("--charset", o->charset, "classes: alnum62 (0-9A-Za-z), upper36, digits10")
      ->check(CLI::IsMember(pretrain::glyph_charset_names()))
      ->capture_default_str();
  app->add_option("--images", o->train_images, "training glyph images")->capture_default_str();
  app->add_option("--test-images", o->test_images, "glyph images per evaluation set")
      ->capture_default_str();
  app->add_option("--epochs", o->epochs, "passes over the training images")->capture_default_str();
  app->add_option("--steps", o->steps, "optimizer steps (overrides --epochs when > 0)")
      ->capture_default_str();
  app->add_option("--batch-size", o->batch_size, "images per step")->capture_default_str();
  app->add_option("--lr", o->lr, "peak AdamW learning rate (linear warm-up, cosine decay)")
      ->capture_default_str();
  app->add_option("--weight-decay", o->weight_decay, "AdamW weight decay on weight matrices")
      ->capture_default_str();
  app->add_option("--test-fraction", o->test_fraction, "share of font families held out")
      ->capture_default_str();
  app->add_option("--seed", o->seed, "seed of weights, glyph draws and batch order")
      ->capture_default_str();
  app->add_option("--threads", o->threads,
                  "glyph-rendering threads (compute threads: OMP_NUM_THREADS)")
      ->capture_default_str();
  app->add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
  app->add_option("--image", o->vit.image_size, "image size in pixels")->capture_default_str();
  app->add_option("--patch", o->vit.patch_size, "patch size")->capture_default_str();
  app->add_option("--width", o->vit.embed_dim, "embedding width")->capture_default_str();
  app->add_option("--depth", o->vit.depth, "transformer blocks")->capture_default_str();
  app->add_option("--heads", o->vit.num_heads, "attention heads")->capture_default_str();
  app->add_option("--mlp-ratio", o->vit.mlp_ratio, "MLP hidden width / width")
      ->capture_default_str();
  app->add_option("--channels", o->vit.in_channels, "input channels (glyphs repeated)")
      ->check(CLI::IsMember({1, 3}))
      ->capture_default_str();
  app->add_option("--log-every", o->log_every, "steps between progress lines")
      ->capture_default_str();

  return {app, [o] {
            pretrain::PretrainOptions options = *o;
            options.log = [](const std::string& line) { std::cout << line << std::endl; };
            pretrain::pretrain_glyph_vit(options);
          }};
}

}  // namespace sdlora::apps
