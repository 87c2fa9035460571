// sdlora forward: runs a ViT checkpoint (timm naming, with or without SD-LoRA adapters) on the
// images of a safetensors file and writes the features and logits, so a backbone can be checked
// against other implementations.
//
//   sdlora forward --weights FILE [--heads H] --input FILE --output FILE [--device cpu|cuda]
//                  [--batch-size N] [--unmerged] [--sdlora-mode paper|official]
#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <memory>
#include <sstream>

#include "apps/commands.h"
#include "apps/model_io.h"
#include "autograd/var.h"
#include "nn/safetensors.h"
#include "tensor/ops.h"

namespace sdlora::apps {

namespace {

struct ForwardOptions {
  std::string weights, input, output;
  int64_t heads = 0;
  std::string device;
  int64_t batch_size = 64;
  bool unmerged = false;
  std::string sdlora_mode;
};

// The `images` tensor of the input file as float32 (B, C, image, image) for this model.
Tensor read_images(const std::string& path, const ViTConfig& c, const std::string& weights) {
  SafetensorsFile file = load_safetensors(path);
  auto it = file.tensors.find("images");
  if (it == file.tensors.end()) {
    std::string names;
    for (const auto& [name, t] : file.tensors) names += (names.empty() ? "" : ", ") + name;
    SDLORA_THROW("--input ", path, ": no tensor 'images' (float32, B x C x H x W); the file holds ",
                 names.empty() ? std::string("no tensors") : names);
  }
  Tensor images = it->second;
  SDLORA_CHECK(is_floating(images.dtype()), "--input ", path, ": images is ",
               dtype_name(images.dtype()),
               "; forward takes float images already in the model's range (e.g. [0, 1])");
  const std::string want = "(B, " + std::to_string(c.in_channels) + ", " +
                           std::to_string(c.image_size) + ", " + std::to_string(c.image_size) + ")";
  SDLORA_CHECK(images.ndim() == 4 && images.size(0) > 0 && images.size(1) == c.in_channels &&
                   images.size(2) == c.image_size && images.size(3) == c.image_size,
               "--input ", path, ": images has shape ", shape_str(images.shape()),
               ", but the checkpoint ", weights, " expects ", want, " (patch ", c.patch_size, ", ",
               c.num_patches(), " patches per image)");
  return images.dtype() == DType::kFloat32 ? images : cast(images, DType::kFloat32);
}

// The number of heads: the file's num_heads metadata (written by `sdlora export` and
// `sdlora pretrain`), else --heads; both present and different is an error, since a wrong head
// count silently gives wrong outputs.
int64_t resolve_heads(const SafetensorsFile& file, int64_t flag, const std::string& path) {
  auto it = file.metadata.find("num_heads");
  if (it == file.metadata.end()) {
    SDLORA_CHECK(flag > 0, "--heads is required: '", path,
                 "' does not record num_heads in its metadata");
    return flag;
  }
  int64_t recorded = 0;
  try {
    size_t used = 0;
    recorded = std::stoll(it->second, &used);
    SDLORA_CHECK(used == it->second.size() && recorded > 0, "");
  } catch (const std::exception&) {
    SDLORA_THROW("'", path, "': metadata num_heads is \"", it->second,
                 "\", not a positive integer");
  }
  SDLORA_CHECK(flag == 0 || flag == recorded, "--heads ", flag, " disagrees with '", path,
               "', whose metadata records num_heads ", recorded);
  return recorded;
}

void run_forward(const ForwardOptions& o) {
  require_input_file("--weights", o.weights);
  require_input_file("--input", o.input);
  SDLORA_CHECK(o.batch_size >= 0, "--batch-size must be >= 0 (0: all images at once), got ",
               o.batch_size);
  const Device device = o.device.empty() ? default_device() : Device::parse(o.device);
  const auto start = std::chrono::steady_clock::now();

  const SafetensorsFile file = load_safetensors(o.weights, device);
  LoadedModel loaded =
      load_model(file, resolve_heads(file, o.heads, o.weights), o.weights, o.sdlora_mode);
  const ViTConfig config = loaded.vit->config();
  const std::string adapters = loaded.describe_adapters();
  const std::string evaluation = !loaded.has_adapters() ? "backbone"
                                 : o.unmerged           ? "adapters unmerged"
                                                        : "adapters merged into the qkv weights";
  // Merged by default: one dense qkv weight per block, so the forward costs the backbone's own
  // and equals the adapted forward up to float rounding.
  std::unique_ptr<ViT> inference = o.unmerged ? nullptr : loaded.take_inference_model();
  const ViT& model = inference ? *inference : *loaded.vit;

  const Tensor images = read_images(o.input, config, o.weights);
  const int64_t B = images.size(0);
  const int64_t chunk = o.batch_size == 0 ? B : std::min(o.batch_size, B);
  std::vector<Tensor> features, logits;
  {
    NoGradGuard no_grad;
    for (int64_t begin = 0; begin < B; begin += chunk) {
      const int64_t n = std::min(chunk, B - begin);
      const ViTOutput out = model.forward(images.narrow(begin, n).to(device));
      features.push_back(out.features.data().to(Device::cpu()));
      if (out.logits.defined()) logits.push_back(out.logits.data().to(Device::cpu()));
    }
  }
  std::map<std::string, Tensor> result;
  result["features"] = features.size() == 1 ? features.front() : cat(features, 0);
  if (!logits.empty()) result["logits"] = logits.size() == 1 ? logits.front() : cat(logits, 0);

  std::ostringstream cfg;
  cfg << "width " << config.embed_dim << ", depth " << config.depth << ", heads "
      << config.num_heads << ", patch " << config.patch_size << ", image " << config.image_size
      << ", channels " << config.in_channels << ", mlp hidden " << config.mlp_hidden()
      << ", classes " << config.num_classes;
  save_safetensors(o.output, result,
                   {{"producer", "sdlora forward"},
                    {"weights", o.weights},
                    {"model", cfg.str()},
                    {"adapters", adapters},
                    {"evaluation", evaluation}});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << "sdlora forward: ViT " << cfg.str() << "; adapters: " << adapters << " ("
            << evaluation << "); " << B << " images on " << device.str() << " -> " << o.output
            << " (features " << shape_str(result["features"].shape());
  if (result.count("logits")) std::cerr << ", logits " << shape_str(result["logits"].shape());
  std::cerr << ") in " << seconds << " s\n";
}

}  // namespace

Command add_forward_command(CLI::App& root) {
  auto o = std::make_shared<ForwardOptions>();
  CLI::App* app = root.add_subcommand(
      "forward",
      "Run a ViT checkpoint (timm naming, optionally with SD-LoRA adapters) on images: writes "
      "`features` (the final-normed class token, B x width) and, with a head, `logits`");
  app->add_option("--weights", o->weights,
                  "checkpoint (safetensors): a ViT in timm naming, optionally with SD-LoRA "
                  "adapters (blocks.{i}.attn.qkv.lora_{q,v}.*, sdlora.alpha)")
      ->required();
  app->add_option("--heads", o->heads,
                  "number of attention heads: required for files that do not record num_heads "
                  "(timm checkpoints); must agree with it where recorded (sdlora export)");
  app->add_option("--input", o->input,
                  "safetensors file with `images`: float32 (B, C, H, W), already in model range")
      ->required();
  app->add_option("--output", o->output, "safetensors file to write features (and logits) to")
      ->required();
  app->add_option("--device", o->device, "cpu, cuda or cuda:N (default: cuda when present)");
  app->add_option("--batch-size", o->batch_size, "images per forward pass (0: all at once)")
      ->capture_default_str();
  app->add_flag("--unmerged", o->unmerged,
                "evaluate the adapters as separate low-rank terms instead of merging them into "
                "the qkv weights (slower; the same function)");
  app->add_option("--sdlora-mode", o->sdlora_mode,
                  "adapter mode for checkpoints without sdlora_mode metadata")
      ->check(CLI::IsMember({"paper", "official"}));
  return {app, [o] { run_forward(*o); }};
}

}  // namespace sdlora::apps
