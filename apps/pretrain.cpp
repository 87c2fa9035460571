// The glyph pre-training loop: fonts -> train/test glyph datasets -> ViT trained with AdamW under
// warm-up + cosine -> held-out accuracy -> safetensors in timm naming with metadata.
#include "apps/pretrain.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "autograd/functions.h"
#include "data/loader.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "nn/scheduler.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace sdlora::apps {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string fixed(double v, int digits) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v;
  return os.str();
}

// Correct predictions of a batch: argmax of the logits against the labels.
int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  const auto pred = argmax(logits, 1).to(Device::cpu()).to_vector<int64_t>();
  const auto truth = labels.to(Device::cpu()).to(DType::kInt64).to_vector<int64_t>();
  int64_t correct = 0;
  for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == truth[i];
  return correct;
}

}  // namespace

ViTConfig glyph_vit_config(int64_t num_classes) {
  ViTConfig c;
  c.image_size = 28;
  c.patch_size = 7;
  c.in_channels = 3;
  c.embed_dim = 96;
  c.depth = 4;
  c.num_heads = 4;
  c.mlp_ratio = 2.0;
  c.num_classes = num_classes;
  return c;
}

double glyph_accuracy(const ViT& model, std::shared_ptr<const data::Dataset> dataset,
                      int64_t batch_size, Device device, int threads) {
  data::LoaderOptions lo;
  lo.batch_size = batch_size;
  lo.shuffle = false;
  lo.num_workers = threads;
  lo.device = device;
  data::Loader loader(std::move(dataset), lo);
  NoGradGuard no_grad;
  int64_t correct = 0, seen = 0;
  loader.start_epoch(0);
  data::Batch batch;
  while (loader.next(batch)) {
    correct += count_correct(model.forward(batch.images).logits.data(), batch.labels);
    seen += batch.labels.numel();
  }
  SDLORA_CHECK(seen > 0, "glyph accuracy over an empty dataset");
  return static_cast<double>(correct) / static_cast<double>(seen);
}

PretrainResult pretrain_glyph_vit(const PretrainOptions& options) {
  const auto t0 = Clock::now();
  auto log = [&](const std::string& line) {
    if (options.log) options.log(line);
  };
  SDLORA_CHECK(options.batch_size > 0, "--batch-size must be positive, got ", options.batch_size);
  SDLORA_CHECK(options.train_images >= options.batch_size, "--images (", options.train_images,
               ") must be at least one batch (", options.batch_size, ")");
  SDLORA_CHECK(options.test_images > 0, "--test-images must be positive");
  SDLORA_CHECK(options.steps > 0 || options.epochs > 0, "set --steps or --epochs above zero");
  SDLORA_CHECK(options.warmup_fraction >= 0 && options.warmup_fraction < 1,
               "warm-up fraction must be in [0, 1)");
  const Device device = Device::parse(options.device);

  // ---- data: one font library, three glyph sets (train; held-out families; fresh train glyphs)
  auto fonts = options.fonts ? options.fonts : data::FontLibrary::load(options.font_dirs, options.charset);
  SDLORA_CHECK(fonts->charset() == data::glyph_charset(options.charset), "the font library was loaded for '",
               fonts->charset(), "', not for the character set ", options.charset);
  data::GlyphOptions go;
  go.test_fraction = options.test_fraction;
  go.channels = static_cast<int>(options.vit.in_channels);
  go.image_size = static_cast<int>(options.vit.image_size);
  go.seed = options.seed;
  go.size = options.train_images;
  auto train = std::make_shared<data::GlyphDataset>(fonts, go);
  go.split = data::Split::kTest;
  go.size = options.test_images;
  auto heldout = std::make_shared<data::GlyphDataset>(fonts, go);
  go.split = data::Split::kTrain;
  go.seed = options.seed + 1;  // other draws: glyphs of the training fonts not trained on
  auto seen_fonts = std::make_shared<data::GlyphDataset>(fonts, go);
  const auto test_families = data::glyph_test_families(*fonts, options.test_fraction, go.split_seed);
  const int64_t n_families = static_cast<int64_t>(fonts->families().size());

  PretrainResult result;
  result.train_faces = static_cast<int64_t>(train->faces().size());
  result.test_faces = static_cast<int64_t>(heldout->faces().size());
  result.test_families = static_cast<int64_t>(test_families.size());
  result.train_families = n_families - result.test_families;
  const auto& skipped = fonts->warnings();
  for (size_t i = 0; i < skipped.size() && i < 10; ++i) log("skipped " + skipped[i]);
  if (skipped.size() > 10) log("... and " + std::to_string(skipped.size() - 10) + " more skipped");
  log("fonts: " + std::to_string(fonts->size()) + " faces in " + std::to_string(n_families) +
      " families (" + std::to_string(fonts->warnings().size()) + " files skipped); train " +
      std::to_string(result.train_faces) + " faces, held out " + std::to_string(result.test_faces) +
      " faces of " + std::to_string(result.test_families) + " families");

  // ---- model and optimiser: every weight trainable; no weight decay on vectors and tokens
  ViTConfig config = options.vit;
  config.num_classes = fonts->num_classes();
  config.validate();
  ViT model(config, device);
  Generator gen(options.seed);
  model.init_weights(gen);
  model.train();
  ParamGroup decay, no_decay;
  for (const auto& [name, p] : model.named_parameters()) {
    const bool matrix = p.ndim() >= 2 && name != "pos_embed" && name != "cls_token";
    (matrix ? decay : no_decay).params.push_back(p);
  }
  no_decay.weight_decay = 0.0;
  AdamOptions ao = AdamW::default_options();
  ao.lr = options.lr;
  ao.weight_decay = options.weight_decay;
  AdamW opt({decay, no_decay}, ao);

  const int64_t per_epoch = options.train_images / options.batch_size;
  const int64_t total = options.steps > 0 ? options.steps : options.epochs * per_epoch;
  const int64_t warmup = static_cast<int64_t>(options.warmup_fraction * static_cast<double>(total));
  CosineAnnealingLR cosine(opt, std::max<int64_t>(1, total - warmup));
  int64_t params = 0;
  for (const auto& p : model.parameters()) params += p.numel();
  log("model: ViT " + std::to_string(config.image_size) + "px patch " +
      std::to_string(config.patch_size) + ", width " + std::to_string(config.embed_dim) +
      ", depth " + std::to_string(config.depth) + ", heads " + std::to_string(config.num_heads) +
      ", mlp " + fixed(config.mlp_ratio, 1) + ", " + std::to_string(config.in_channels) +
      " channels, " + std::to_string(config.num_classes) + " classes; " + std::to_string(params) +
      " parameters; " + std::to_string(total) + " steps of " + std::to_string(options.batch_size) +
      " on " + device.str());

  data::LoaderOptions lo;
  lo.batch_size = options.batch_size;
  lo.shuffle = true;
  lo.drop_last = true;
  lo.num_workers = options.threads;
  lo.seed = options.seed;
  lo.device = device;
  data::Loader loader(train, lo);

  // ---- training
  const auto t_train = Clock::now();
  double window_loss = 0;
  int64_t window_correct = 0, window_seen = 0, window_steps = 0;
  // Per-step losses and predictions stay on the device and are read back in one go at each
  // progress line (at least every kFlushEvery steps), not every step: no host sync per step.
  constexpr size_t kFlushEvery = 50;
  std::vector<Tensor> pending_loss, pending_pred, pending_label;
  const auto flush = [&] {
    if (pending_loss.empty()) return;
    const std::vector<float> losses = cat(pending_loss, 0).to_vector<float>();
    const std::vector<int64_t> pred = cat(pending_pred, 0).to_vector<int64_t>();
    const std::vector<int64_t> truth =
        cast(cat(pending_label, 0), DType::kInt64).to_vector<int64_t>();
    for (size_t i = 0; i < losses.size(); ++i) {
      const int64_t at = static_cast<int64_t>(result.losses.size());
      SDLORA_CHECK(std::isfinite(losses[i]), "pre-training diverged at step ", at, " (loss ",
                   losses[i], ")");
      result.losses.push_back(losses[i]);
      window_loss += losses[i];
    }
    for (size_t i = 0; i < pred.size(); ++i) window_correct += pred[i] == truth[i];
    window_seen += static_cast<int64_t>(pred.size());
    pending_loss.clear();
    pending_pred.clear();
    pending_label.clear();
  };
  int64_t step = 0;
  for (int64_t epoch = 0; step < total; ++epoch) {
    loader.start_epoch(epoch);
    data::Batch batch;
    while (step < total && loader.next(batch)) {
      const double lr = step < warmup ? options.lr * static_cast<double>(step + 1) / static_cast<double>(warmup)
                                      : cosine.lr_at(options.lr, step - warmup);
      for (size_t g = 0; g < opt.num_groups(); ++g) opt.set_lr(g, lr);
      const ViTOutput out = model.forward(batch.images);
      Var loss = cross_entropy(out.logits, batch.labels);
      opt.zero_grad(/*set_to_none=*/true);
      backward(loss);
      opt.step();
      pending_loss.push_back(loss.data().reshape({1}));
      pending_pred.push_back(argmax(out.logits.data(), 1));
      pending_label.push_back(batch.labels);
      ++window_steps;
      ++step;
      const bool line = options.log_every > 0 && (step % options.log_every == 0 || step == total);
      if (line || step == total || pending_loss.size() >= kFlushEvery) flush();
      if (line) {
        const double elapsed = seconds_since(t_train);
        log("step " + std::to_string(step) + "/" + std::to_string(total) + "  loss " +
            fixed(window_loss / static_cast<double>(window_steps), 4) + "  train acc " +
            fixed(100.0 * static_cast<double>(window_correct) / static_cast<double>(window_seen), 1) +
            "%  lr " + fixed(lr * 1e3, 3) + "e-3  " +
            fixed(static_cast<double>(step * options.batch_size) / elapsed, 0) + " img/s  eta " +
            fixed(elapsed / static_cast<double>(step) * static_cast<double>(total - step), 0) + " s");
        window_loss = 0;
        window_correct = window_seen = window_steps = 0;
      }
    }
  }
  flush();
  result.steps = step;
  const double train_seconds = seconds_since(t_train);

  // ---- evaluation
  model.eval();
  result.heldout_accuracy = glyph_accuracy(model, heldout, 256, device, options.threads);
  result.train_font_accuracy = glyph_accuracy(model, seen_fonts, 256, device, options.threads);
  result.seconds = seconds_since(t0);
  log("held-out fonts accuracy " + fixed(100.0 * result.heldout_accuracy, 2) + "% (" +
      std::to_string(options.test_images) + " glyphs of " + std::to_string(result.test_faces) +
      " unseen faces); training fonts, fresh glyphs " + fixed(100.0 * result.train_font_accuracy, 2) +
      "%; " + fixed(train_seconds, 0) + " s training, " + fixed(result.seconds, 0) + " s in all");

  // ---- save: timm names, the head kept (consumers drop head.*), metadata as strings
  auto& m = result.metadata;
  m["format"] = "timm-vit";
  m["purpose"] = "sdlora demo backbone pre-trained on rendered glyphs";
  m["image_size"] = std::to_string(config.image_size);
  m["patch_size"] = std::to_string(config.patch_size);
  m["in_channels"] = std::to_string(config.in_channels);
  m["embed_dim"] = std::to_string(config.embed_dim);
  m["depth"] = std::to_string(config.depth);
  m["num_heads"] = std::to_string(config.num_heads);
  m["mlp_ratio"] = fixed(config.mlp_ratio, 2);
  m["num_classes"] = std::to_string(config.num_classes);
  m["classes"] = fonts->charset();
  m["charset"] = options.charset;
  m["input"] = "pixels / 255 (no mean/std), grey images as equal channels, white on black";
  m["heldout_accuracy"] = fixed(result.heldout_accuracy, 4);
  m["train_font_accuracy"] = fixed(result.train_font_accuracy, 4);
  m["heldout_images"] = std::to_string(options.test_images);
  m["fonts"] = std::to_string(fonts->size());
  m["font_families"] = std::to_string(n_families);
  m["train_fonts"] = std::to_string(result.train_faces);
  m["heldout_fonts"] = std::to_string(result.test_faces);
  m["heldout_families"] = std::to_string(result.test_families);
  m["test_fraction"] = fixed(options.test_fraction, 3);
  m["seed"] = std::to_string(options.seed);
  m["steps"] = std::to_string(result.steps);
  m["batch_size"] = std::to_string(options.batch_size);
  m["train_images"] = std::to_string(options.train_images);
  m["lr"] = fixed(options.lr, 6);
  m["weight_decay"] = fixed(options.weight_decay, 4);
  m["final_loss"] = fixed(result.losses.empty() ? 0.0 : result.losses.back(), 4);
  m["train_seconds"] = fixed(train_seconds, 0);
  if (!options.out.empty()) {
    const auto parent = std::filesystem::path(options.out).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    save_safetensors(options.out, model.state_dict(), m);
    log("wrote " + options.out);
  }
  return result;
}

}  // namespace sdlora::apps
