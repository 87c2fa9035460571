// Checkpoint -> model: size inference from timm's tensor names, strict backbone loading and the
// SD-LoRA adapters through their own loader.
#include "apps/model_io.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <sstream>
#include <system_error>

namespace sdlora::apps {

namespace {

const Tensor& require(const std::map<std::string, Tensor>& tensors, const std::string& name,
                      size_t ndim, const std::string& source) {
  auto it = tensors.find(name);
  SDLORA_CHECK(it != tensors.end(), source, ": no tensor '", name,
               "' (a ViT checkpoint in timm naming has one)");
  SDLORA_CHECK(it->second.ndim() == static_cast<int64_t>(ndim), source, ": tensor '", name,
               "' has shape ", shape_str(it->second.shape()), ", expected ", ndim, " dimensions");
  return it->second;
}

// The block index of "blocks.{i}.<rest>", or -1 for other names; an index beyond any ViT's
// depth (ViTConfig::kMaxDepth) is an error naming the tensor, never a depth to build.
int64_t block_index(const std::string& name, const std::string& source) {
  const std::string prefix = "blocks.";
  if (name.rfind(prefix, 0) != 0) return -1;
  size_t end = prefix.size();
  while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) ++end;
  if (end == prefix.size() || end >= name.size() || name[end] != '.') return -1;
  int64_t i = 0;
  const auto parsed = std::from_chars(name.data() + prefix.size(), name.data() + end, i);
  SDLORA_CHECK(parsed.ec == std::errc() && i < ViTConfig::kMaxDepth, source, ": tensor '", name,
               "' has block index ", name.substr(prefix.size(), end - prefix.size()),
               ", beyond any ViT (at most ", ViTConfig::kMaxDepth, " blocks)");
  return i;
}

}  // namespace

bool has_adapter_tensors(const std::map<std::string, Tensor>& tensors) {
  for (const auto& [name, t] : tensors)
    if (SDLoRA::is_adapter_key(name)) return true;
  return false;
}

ViTConfig infer_vit_config(const std::map<std::string, Tensor>& tensors, int64_t num_heads,
                           const std::string& source) {
  ViTConfig c;
  const Tensor& patch = require(tensors, "patch_embed.proj.weight", 4, source);
  const Shape& ps = patch.shape();  // (D, C, p, p)
  SDLORA_CHECK(ps[2] == ps[3] && ps[2] > 0 && ps[0] > 0 && ps[1] > 0, source,
               ": patch_embed.proj.weight has shape ", shape_str(ps),
               ", expected (width, channels, patch, patch) with a square patch");
  c.embed_dim = ps[0];
  c.in_channels = ps[1];
  c.patch_size = ps[2];

  // The layouts this ViT does not build, named before the shape checks would misreport them.
  for (const auto& [name, t] : tensors)
    SDLORA_CHECK(name != "reg_token" && name.rfind("reg_token.", 0) != 0, source,
                 ": holds register tokens (", name, " ", shape_str(t.shape()),
                 "); ViTs with register tokens are not supported");
  SDLORA_CHECK(tensors.count("cls_token") > 0, source,
               ": has no cls_token; this ViT reads its features at the class token, so "
               "checkpoints without one (global-pooled ViTs) are not supported");
  const Tensor& pos = require(tensors, "pos_embed", 3, source);
  const Shape& qs = pos.shape();  // (1, 1 + (image / p)^2, D)
  SDLORA_CHECK(qs[0] == 1 && qs[2] == c.embed_dim && qs[1] >= 2, source, ": pos_embed has shape ",
               shape_str(qs), ", expected (1, 1 + patches, ", c.embed_dim,
               ") for the width of patch_embed.proj.weight");
  const int64_t patches = qs[1] - 1;
  const auto grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(patches))));
  SDLORA_CHECK(grid * grid == patches, source, ": pos_embed has ", patches,
               " patch positions (shape ", shape_str(qs),
               "), not a square grid; only square images are supported");
  c.image_size = grid * c.patch_size;

  int64_t depth = 0;
  for (const auto& [name, t] : tensors)
    if (!SDLoRA::is_adapter_key(name)) depth = std::max(depth, block_index(name, source) + 1);
  SDLORA_CHECK(depth > 0, source, ": no blocks.{i}.* tensors, so no transformer blocks");
  c.depth = depth;

  const Tensor& fc1 = require(tensors, "blocks.0.mlp.fc1.weight", 2, source);
  SDLORA_CHECK(fc1.size(1) == c.embed_dim && fc1.size(0) > 0, source,
               ": blocks.0.mlp.fc1.weight has shape ", shape_str(fc1.shape()),
               ", expected (hidden, ", c.embed_dim, ")");
  const int64_t hidden = fc1.size(0);
  c.mlp_ratio = static_cast<double>(hidden) / static_cast<double>(c.embed_dim);
  // ViTConfig stores a ratio; make sure it maps back to exactly this hidden size.
  while (c.mlp_hidden() < hidden) c.mlp_ratio = std::nextafter(c.mlp_ratio, 2.0 * c.mlp_ratio);

  c.qkv_bias = tensors.count("blocks.0.attn.qkv.bias") > 0;
  auto head = tensors.find("head.weight");
  if (head != tensors.end()) {
    SDLORA_CHECK(head->second.ndim() == 2 && head->second.size(1) == c.embed_dim, source,
                 ": head.weight has shape ", shape_str(head->second.shape()),
                 ", expected (classes, ", c.embed_dim, ")");
    c.num_classes = head->second.size(0);
  } else {
    c.num_classes = 0;
  }

  SDLORA_CHECK(num_heads > 0, "--heads must be positive, got ", num_heads);
  SDLORA_CHECK(c.embed_dim % num_heads == 0, "--heads ", num_heads,
               " does not divide the checkpoint's width ", c.embed_dim, " (", source,
               ": patch_embed.proj.weight is ", shape_str(ps), ")");
  c.num_heads = num_heads;
  c.validate();
  return c;
}

std::string LoadedModel::describe_adapters() const {
  if (!adapters) return "none";
  std::ostringstream os;
  os << "SD-LoRA (" << sdlora_mode_name(adapters->mode()) << " mode), "
     << adapters->num_components() << " frozen component"
     << (adapters->num_components() == 1 ? "" : "s");
  if (adapters->has_current()) os << " + the current pair";
  return os.str();
}

std::unique_ptr<ViT> LoadedModel::take_inference_model() {
  std::unique_ptr<ViT> out;
  if (adapters) {
    out = adapters->merged_vit();
    adapters.reset();  // detaches from vit before it goes
  } else {
    out = std::move(vit);
    out->set_requires_grad(false);
  }
  vit.reset();
  out->eval();
  return out;
}

LoadedModel load_model(const SafetensorsFile& file, int64_t num_heads, const std::string& source,
                       const std::string& mode_override) {
  const ViTConfig config = infer_vit_config(file.tensors, num_heads, source);
  Device device = Device::cpu();
  if (!file.tensors.empty()) device = file.tensors.begin()->second.device();

  LoadedModel m;
  m.vit = std::make_unique<ViT>(config, device);
  std::map<std::string, Tensor> backbone;
  for (const auto& [name, t] : file.tensors)
    if (!SDLoRA::is_adapter_key(name)) backbone[name] = t;
  try {
    m.vit->load_state_dict(backbone, true);
  } catch (const Error& e) {
    SDLORA_THROW(source, ": ", e.what());
  }

  if (!has_adapter_tensors(file.tensors)) return m;
  std::map<std::string, std::string> metadata = file.metadata;
  if (!metadata.count("sdlora_mode")) {
    SDLORA_CHECK(!mode_override.empty(), source,
                 ": the file has SD-LoRA adapter tensors but no sdlora_mode metadata; give the "
                 "mode with --sdlora-mode paper|official");
    metadata["sdlora_mode"] = mode_override;
  } else {
    SDLORA_CHECK(mode_override.empty() || mode_override == metadata.at("sdlora_mode"),
                 "--sdlora-mode ", mode_override, " contradicts ", source, "'s sdlora_mode \"",
                 metadata.at("sdlora_mode"), "\"");
  }
  const SDLoRAMode mode = parse_sdlora_mode(metadata.at("sdlora_mode"));
  m.adapters = std::make_unique<SDLoRA>(*m.vit, mode);
  try {
    m.adapters->load_state_dict(file.tensors, metadata);
  } catch (const Error& e) {
    SDLORA_THROW(source, ": ", e.what());
  }
  return m;
}

LoadedModel load_model(const std::string& path, int64_t num_heads, Device device,
                       const std::string& mode_override) {
  return load_model(load_safetensors(path, device), num_heads, path, mode_override);
}

}  // namespace sdlora::apps
