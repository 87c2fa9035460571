// The glyph pre-training loop: fonts -> train/test glyph datasets -> ViT trained with AdamW under
// warm-up + cosine -> held-out accuracy -> safetensors in timm naming with metadata.
#include "pretrain/pretrain.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "autograd/functions.h"
#include "cl/train_step.h"
#include "data/loader.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "nn/scheduler.h"
#include "tensor/ops.h"
#include "tensor/random.h"
#include "tensor/timing.h"

namespace sdlora::pretrain {
namespace {

std::string fixed(double v, int digits) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v;
  return os.str();
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
  cl::AccuracyCounter counter(device);
  loader.start_epoch(0);
  data::Batch batch;
  while (loader.next(batch)) counter.add(model.forward(batch.images).logits.data(), batch.labels);
  SDLORA_CHECK(counter.total() > 0, "glyph accuracy over an empty dataset");
  return counter.accuracy();
}

PretrainResult pretrain_glyph_vit(const PretrainOptions& options) {
  const Stopwatch clock;
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
  auto fonts =
      options.fonts ? options.fonts : FontLibrary::load(options.font_dirs, options.charset);
  SDLORA_CHECK(fonts->charset() == glyph_charset(options.charset),
               "the font library was loaded for '", fonts->charset(),
               "', not for the character set ", options.charset);
  GlyphOptions go;
  go.test_fraction = options.test_fraction;
  go.channels = static_cast<int>(options.vit.in_channels);
  go.image_size = static_cast<int>(options.vit.image_size);
  go.seed = options.seed;
  go.size = options.train_images;
  auto train = std::make_shared<GlyphDataset>(fonts, go);
  go.split = data::Split::kTest;
  go.size = options.test_images;
  auto heldout = std::make_shared<GlyphDataset>(fonts, go);
  go.split = data::Split::kTrain;
  go.seed = options.seed + 1;  // other draws: glyphs of the training fonts not trained on
  auto seen_fonts = std::make_shared<GlyphDataset>(fonts, go);
  const auto test_families = glyph_test_families(*fonts, options.test_fraction, go.split_seed);
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

  // ---- training: the trainer's epoch loop (cl/train_step.h) with a per-step learning rate;
  // losses and predictions stay on the device and are read back at progress lines and at least
  // every kReadEvery steps, not every step.
  constexpr int64_t kReadEvery = 50;
  const Stopwatch train_clock;
  cl::LossWindow window(device, kReadEvery);
  cl::AccuracyCounter train_acc(device);
  cl::NamedVars named;
  for (const auto& [name, p] : model.named_parameters()) named.emplace_back(name, p);
  int64_t step = 0;
  double lr = 0.0;
  const auto is_log_step = [&](int64_t s) {
    return options.log_every > 0 && (s % options.log_every == 0 || s == total);
  };
  cl::EpochHooks hooks;
  hooks.before_step = [&](int64_t) {
    lr = step < warmup ? options.lr * static_cast<double>(step + 1) / static_cast<double>(warmup)
                       : cosine.lr_at(options.lr, step - warmup);
    for (size_t g = 0; g < opt.num_groups(); ++g) opt.set_lr(g, lr);
  };
  hooks.force_read = [&](int64_t) { return is_log_step(step + 1) || step + 1 == total; };
  hooks.after_step = [&](const cl::StepReport&) {
    ++step;
    if (!is_log_step(step)) return;
    const double elapsed = train_clock.seconds();
    log("step " + std::to_string(step) + "/" + std::to_string(total) + "  loss " +
        fixed(window.mean_since_reset(), 4) + "  train acc " +
        fixed(100.0 * train_acc.accuracy(), 1) + "%  lr " + fixed(lr * 1e3, 3) + "e-3  " +
        fixed(static_cast<double>(step * options.batch_size) / elapsed, 0) + " img/s  eta " +
        fixed(elapsed / static_cast<double>(step) * static_cast<double>(total - step), 0) + " s");
    window.reset_mean();
    train_acc.reset();
  };
  const auto loss_of = [&](const data::Batch& batch) {
    const ViTOutput out = model.forward(batch.images);
    train_acc.add(out.logits.data(), batch.labels);
    return cross_entropy(out.logits, batch.labels);
  };
  // after_step advances `step`; an epoch ends early at `total`.
  for (int64_t epoch = 0;; ++epoch) {
    if (step >= total) break;
    hooks.max_steps = total - step;
    const int64_t taken =
        cl::run_epoch(loader, epoch, opt, window, named, loss_of, hooks, "pre-training");
    SDLORA_CHECK(taken > 0, "pre-training: epoch ", epoch, " had no batch (", options.train_images,
                 " images, batch ", options.batch_size, ")");
  }
  result.losses = window.batch_losses();
  result.steps = step;
  const double train_seconds = train_clock.seconds();

  // ---- evaluation
  model.eval();
  result.heldout_accuracy = glyph_accuracy(model, heldout, 256, device, options.threads);
  result.train_font_accuracy = glyph_accuracy(model, seen_fonts, 256, device, options.threads);
  result.seconds = clock.seconds();
  log("held-out fonts accuracy " + fixed(100.0 * result.heldout_accuracy, 2) + "% (" +
      std::to_string(options.test_images) + " glyphs of " + std::to_string(result.test_faces) +
      " unseen faces); training fonts, fresh glyphs " +
      fixed(100.0 * result.train_font_accuracy, 2) + "%; " + fixed(train_seconds, 0) +
      " s training, " + fixed(result.seconds, 0) + " s in all");

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

}  // namespace sdlora::pretrain
