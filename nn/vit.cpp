// The ViT: configuration and presets, attention, blocks and the model's forward.
#include "nn/vit.h"

#include <array>
#include <cmath>
#include <map>

#include "autograd/functions.h"
#include "nn/safetensors.h"
#include "tensor/ops.h"

namespace sdlora {

// ---- configuration

void ViTConfig::validate() const {
  SDLORA_CHECK(image_size > 0 && patch_size > 0 && in_channels > 0 && embed_dim > 0 && depth > 0 &&
                   num_heads > 0 && mlp_ratio > 0 && num_classes >= 0 && ln_eps > 0,
               "ViTConfig: sizes must be positive (image ", image_size, ", patch ", patch_size,
               ", channels ", in_channels, ", width ", embed_dim, ", depth ", depth, ", heads ",
               num_heads, ", mlp ratio ", mlp_ratio, ", classes ", num_classes, ")");
  SDLORA_CHECK(image_size % patch_size == 0, "ViTConfig: image size ", image_size,
               " is not a multiple of the patch size ", patch_size);
  SDLORA_CHECK(embed_dim % num_heads == 0, "ViTConfig: width ", embed_dim,
               " is not a multiple of the number of heads ", num_heads);
  // Bounds far beyond any ViT, so that the sizes derived from these (patches, hidden units,
  // parameter counts) stay well inside int64 and a float-to-int conversion is always defined.
  SDLORA_CHECK(
      image_size <= 65536 && embed_dim <= 65536 && depth <= kMaxDepth && in_channels <= 4096,
      "ViTConfig: image ", image_size, ", width ", embed_dim, ", depth ", depth, ", channels ",
      in_channels,
      " beyond the supported sizes (image and width at most 65536, depth and channels "
      "at most 4096)");
  SDLORA_CHECK(
      std::isfinite(mlp_ratio) && static_cast<double>(embed_dim) * mlp_ratio < 2147483648.0,
      "ViTConfig: MLP ratio ", mlp_ratio, " with width ", embed_dim,
      " gives 2^31 or more hidden units");
  SDLORA_CHECK(mlp_hidden() > 0, "ViTConfig: MLP ratio ", mlp_ratio, " gives no hidden units");
}

namespace {
const std::map<std::string, std::array<int64_t, 3>>& presets() {  // width, depth, heads
  static const std::map<std::string, std::array<int64_t, 3>> table{
      {"vit_base_patch16_224", {768, 12, 12}},
      {"vit_small_patch16_224", {384, 12, 6}},
      {"vit_tiny_patch16_224", {192, 12, 3}},
  };
  return table;
}
}  // namespace

std::vector<std::string> vit_preset_names() {
  std::vector<std::string> names;
  for (const auto& [name, sizes] : presets()) names.push_back(name);
  return names;
}

ViTConfig vit_preset(const std::string& name, int64_t num_classes) {
  auto it = presets().find(name);
  if (it == presets().end()) {
    SDLORA_THROW("unknown ViT preset '", name, "' (known: ", join(vit_preset_names()), ")");
  }
  ViTConfig c;
  c.embed_dim = it->second[0];
  c.depth = it->second[1];
  c.num_heads = it->second[2];
  c.num_classes = num_classes;
  return c;
}

// ---- attention

Attention::Attention(int64_t dim, int64_t num_heads, bool qkv_bias, Device device)
    : dim_(dim),
      heads_(num_heads),
      qkv_(register_module("qkv", std::make_shared<Linear>(dim, 3 * dim, qkv_bias, device))),
      proj_(register_module("proj", std::make_shared<Linear>(dim, dim, true, device))) {
  SDLORA_CHECK(num_heads > 0 && dim % num_heads == 0, "Attention: width ", dim,
               " is not a multiple of the number of heads ", num_heads);
}

Var Attention::forward(const Var& x) const { return proj_->forward(heads_out(x)); }

Var Attention::forward(const Var& x, const Var& residual) const {
  return proj_->forward(heads_out(x), residual);
}

Var Attention::heads_out(const Var& x) const {
  SDLORA_CHECK(x.ndim() == 3 && x.size(2) == dim_, "Attention: input ", x.describe(),
               " should be (B, N, ", dim_, ")");
  Var y = qkv_->forward(x);  // (B, N, 3C): q, k, v side by side, each C = H heads of hd
  if (adapter_) y = adapter_->adapt_qkv(x, y);
  // The heads are read in place from y and written in the (B, N, C) token layout (no copies).
  return attention_qkv(y, heads_);
}

Var QKVAdapter::adapt_qkv(const Var& x, const Var& qkv) const {
  const int64_t C = qkv.size(-1) / 3;
  Var q = slice(qkv, -1, 0, C), v = slice(qkv, -1, 2 * C, 3 * C);
  adapt(x, q, v);
  return cat({q, slice(qkv, -1, C, 2 * C), v}, -1);
}

// ---- block, patch embedding, block list

Block::Block(const ViTConfig& c, Device device)
    : norm1_(register_module("norm1", std::make_shared<LayerNorm>(c.embed_dim, c.ln_eps, device))),
      attn_(register_module(
          "attn", std::make_shared<Attention>(c.embed_dim, c.num_heads, c.qkv_bias, device))),
      norm2_(register_module("norm2", std::make_shared<LayerNorm>(c.embed_dim, c.ln_eps, device))),
      mlp_(register_module("mlp", std::make_shared<Mlp>(c.embed_dim, c.mlp_hidden(), device))) {}

Var Block::forward(const Var& x) const {
  // Each residual add is the C input of the product before it (proj, fc2).
  const Var h = attn_->forward(norm1_->forward(x), x);
  return mlp_->forward(norm2_->forward(h), h);
}

PatchEmbed::PatchEmbed(const ViTConfig& c, Device device)
    : proj_(register_module(
          "proj", std::make_shared<PatchConv>(c.in_channels, c.embed_dim, c.patch_size, device))) {}

BlockList::BlockList(const ViTConfig& c, Device device) {
  for (int64_t i = 0; i < c.depth; ++i)
    blocks_.push_back(register_module(std::to_string(i), std::make_shared<Block>(c, device)));
}

// ---- the model

ViT::ViT(const ViTConfig& config, Device device) : config_(config) {
  config_.validate();
  const int64_t D = config_.embed_dim;
  // Registered in timm's order, so named_parameters() lists them as timm does.
  cls_token_ = register_parameter("cls_token", Tensor::zeros({1, 1, D}, DType::kFloat32, device));
  pos_embed_ = register_parameter(
      "pos_embed", Tensor::zeros({1, config_.num_patches() + 1, D}, DType::kFloat32, device));
  patch_embed_ = register_module("patch_embed", std::make_shared<PatchEmbed>(config_, device));
  blocks_ = register_module("blocks", std::make_shared<BlockList>(config_, device));
  norm_ = register_module("norm", std::make_shared<LayerNorm>(D, config_.ln_eps, device));
  if (config_.num_classes > 0)
    head_ = register_module("head", std::make_shared<Linear>(D, config_.num_classes, true, device));
}

Linear& ViT::head() const {
  SDLORA_CHECK(head_ != nullptr, "ViT: this model has no head (num_classes = 0)");
  return *head_;
}

void ViT::init_weights(Generator& gen) {
  auto set = [&](const Var& p, Tensor value) {
    Tensor dst = p.data();
    dst.copy_(value);
  };
  auto init_linear = [&](const Linear& l) {
    set(l.weight(),
        gen.normal(l.weight().shape(), 0.0, 0.02, DType::kFloat32, l.weight().device()));
    if (l.bias().defined())
      set(l.bias(), Tensor::zeros(l.bias().shape(), DType::kFloat32, l.bias().device()));
  };
  auto init_norm = [&](const LayerNorm& n) {
    set(n.weight(), Tensor::full(n.weight().shape(), 1.0, DType::kFloat32, n.weight().device()));
    set(n.bias(), Tensor::zeros(n.bias().shape(), DType::kFloat32, n.bias().device()));
  };
  set(pos_embed_, gen.normal(pos_embed_.shape(), 0.0, 0.02, DType::kFloat32, pos_embed_.device()));
  set(cls_token_, gen.normal(cls_token_.shape(), 0.0, 1e-6, DType::kFloat32, cls_token_.device()));
  patch_embed_->proj().reset_parameters(gen);
  for (int64_t i = 0; i < depth(); ++i) {
    const Block& b = block(i);
    init_norm(b.norm1());
    init_linear(b.attn().qkv());
    init_linear(b.attn().proj());
    init_norm(b.norm2());
    init_linear(b.mlp().fc1());
    init_linear(b.mlp().fc2());
  }
  init_norm(*norm_);
  if (head_) init_linear(*head_);
}

ViTOutput ViT::forward(const Var& images) const {
  const ViTConfig& c = config_;
  SDLORA_CHECK(images.ndim() == 4 && images.size(1) == c.in_channels &&
                   images.size(2) == c.image_size && images.size(3) == c.image_size,
               "ViT: images ", images.describe(), " should be (B, ", c.in_channels, ", ",
               c.image_size, ", ", c.image_size, ")");
  const int64_t B = images.size(0), D = c.embed_dim;
  const DType act = activation_dtype(precision_);
  Var x = patch_embed_->forward(cast(images, act));      // (B, N, D)
  x = cat({broadcast_to(cls_token_, {B, 1, D}), x}, 1);  // (B, N + 1, D)
  x = add(x, pos_embed_);
  for (int64_t i = 0; i < depth(); ++i) x = block(i).forward(x);
  // LayerNorm acts per token, so normalising the class token alone equals timm's norm-then-pool.
  ViTOutput out;
  out.features = cast(reshape(norm_->forward(slice(x, 1, 0, 1)), {B, D}), DType::kFloat32);
  if (head_) out.logits = head_->forward(out.features);
  return out;
}

void ViT::set_precision(Precision precision) {
  const DType dtype = activation_dtype(precision);
  for (auto& [name, p] : named_parameters()) {
    if (name.rfind("head.", 0) == 0) continue;
    if (dtype == DType::kBFloat16) p.set_requires_grad(false);
    if (p.dtype() != dtype) {
      p.clear_grad();
      p.set_data(cast(p.data(), dtype));
    }
  }
  precision_ = precision;
}

void ViT::load_pretrained(const std::string& path) {
  SafetensorsFile file = load_safetensors(path, device());
  if (!head_) {
    for (auto it = file.tensors.begin(); it != file.tensors.end();)
      it = it->first.rfind("head.", 0) == 0 ? file.tensors.erase(it) : std::next(it);
  }
  try {
    load_state_dict(file.tensors, true);
  } catch (const Error& e) {
    SDLORA_THROW(path, ": ", e.what());
  }
}

}  // namespace sdlora
