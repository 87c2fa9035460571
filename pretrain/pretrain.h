// Pre-training of the demo's backbone: a small ViT trained end to end (every weight, AdamW,
// linear warm-up then cosine decay) to classify glyphs rendered from the machine's fonts
// (pretrain/glyphs.h), evaluated on glyphs of font families held out of training, and saved in
// timm's naming with its configuration and accuracy as safetensors metadata.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/vit.h"
#include "pretrain/glyphs.h"

namespace sdlora::pretrain {

// The backbone the demo ships: 28 px glyphs in 3 equal channels (as the demo feeds
// Fashion-MNIST), patch 7 (16 tokens + class token), width 96, 4 blocks of 4 heads, MLP ratio 2.
ViTConfig glyph_vit_config(int64_t num_classes);

struct PretrainOptions {
  std::string out = "models/glyph_vit.safetensors";  // "" = do not save
  std::vector<std::string> font_dirs = {"/usr/share/fonts"};
  std::string charset = "alnum62";
  int64_t train_images = 100000;
  int64_t test_images = 6200;  // per evaluation set (held-out fonts; fresh glyphs of train fonts)
  int64_t epochs = 1;          // passes over the training images ...
  int64_t steps = 0;           // ... unless steps > 0
  int64_t batch_size = 128;
  double lr = 1e-3;
  double weight_decay = 0.05;  // on matrices only; biases, norms, tokens and positions get none
  double warmup_fraction = 0.05;
  double test_fraction = 0.15;  // share of font families held out
  uint64_t seed = 0;            // weights, glyph draws and batch order
  int threads = 1;              // glyph-rendering loader workers
  std::string device = "cpu";
  ViTConfig vit = glyph_vit_config(62);  // num_classes is set from the character set
  int64_t log_every = 50;
  // Progress lines; empty = silent.
  std::function<void(const std::string&)> log;
  // Fonts already loaded (tests); null = load font_dirs.
  std::shared_ptr<const FontLibrary> fonts;
};

struct PretrainResult {
  double heldout_accuracy = 0;     // glyphs of the held-out font families
  double train_font_accuracy = 0;  // fresh glyphs of the training families
  std::vector<double> losses;      // per step
  int64_t steps = 0;
  int64_t train_faces = 0, test_faces = 0;
  int64_t train_families = 0, test_families = 0;
  double seconds = 0;                           // training and evaluation
  std::map<std::string, std::string> metadata;  // what was written beside the tensors
};

PretrainResult pretrain_glyph_vit(const PretrainOptions& options);

// Top-1 accuracy of the model's head on a dataset (images scaled to [0, 1], no normalisation).
double glyph_accuracy(const ViT& model, std::shared_ptr<const data::Dataset> dataset,
                      int64_t batch_size, Device device, int threads);

}  // namespace sdlora::pretrain
