// The Vision Transformer with timm's parameter names and semantics (VisionTransformer with
// class-token pooling): patch embedding (a conv with stride = patch), class token, learned
// position embedding, pre-norm blocks with qkv bias, exact GELU, LayerNorm eps 1e-6, final norm,
// optional linear head. Loads timm's safetensors checkpoints as published.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"
#include "nn/module.h"
#include "nn/precision.h"

namespace sdlora {

struct ViTConfig {
  int64_t image_size = 224;
  int64_t patch_size = 16;
  int64_t in_channels = 3;
  int64_t embed_dim = 768;
  int64_t depth = 12;
  int64_t num_heads = 12;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  int64_t num_classes = 1000;  // 0: no head, forward gives features only
  double ln_eps = 1e-6;

  // Bounds far beyond any ViT (validate refuses more): the sizes derived from them stay inside
  // int64, and a depth read from a checkpoint's tensor names is bounded before it is built.
  static constexpr int64_t kMaxDepth = 4096;

  int64_t grid() const { return image_size / patch_size; }
  int64_t num_patches() const { return grid() * grid(); }
  int64_t mlp_hidden() const {
    return static_cast<int64_t>(static_cast<double>(embed_dim) * mlp_ratio);
  }
  // Throws naming the first inconsistent field (sizes, divisibility of image by patch and of
  // width by heads).
  void validate() const;
};

// timm's presets: vit_base_patch16_224 (768 wide, 12 deep, 12 heads), vit_small_patch16_224
// (384, 12, 6), vit_tiny_patch16_224 (192, 12, 3); all 224 px, patch 16, MLP ratio 4.
ViTConfig vit_preset(const std::string& name, int64_t num_classes = 1000);
std::vector<std::string> vit_preset_names();

// Adds a learned update to the q and v parts of a qkv projection (the SD-LoRA adapter implements
// it; nn/sdlora.h). x (B, N, d_in) is the projection's input, q and v (B, N, D) its outputs.
class QKVAdapter {
 public:
  virtual ~QKVAdapter() = default;
  virtual void adapt(const Var& x, Var& q, Var& v) const = 0;
  // The same on the qkv output (B, N, 3D) = [q | k | v]; returns the adapted qkv, which may be
  // qkv itself updated in place (the caller reads only the result). By default q and v are
  // sliced out, adapted and concatenated back.
  virtual Var adapt_qkv(const Var& x, const Var& qkv) const;
};

// Multi-head self-attention: qkv (3D, D) with bias, heads of D/H, scale 1/sqrt(D/H), proj (D, D).
class Attention : public Module {
 public:
  Attention(int64_t dim, int64_t num_heads, bool qkv_bias, Device device = Device::cpu());
  Var forward(const Var& x) const;  // (B, N, D) -> (B, N, D)
  // residual + attention(x), the residual added in proj's epilogue.
  Var forward(const Var& x, const Var& residual) const;

  Linear& qkv() const { return *qkv_; }
  Linear& proj() const { return *proj_; }
  // The adapter is not a child module: its state is saved by its owner, under its own names.
  void set_adapter(std::shared_ptr<const QKVAdapter> adapter) { adapter_ = std::move(adapter); }
  const std::shared_ptr<const QKVAdapter>& adapter() const { return adapter_; }

 private:
  int64_t dim_, heads_;
  std::shared_ptr<Linear> qkv_, proj_;
  std::shared_ptr<const QKVAdapter> adapter_;
  Var heads_out(const Var& x) const;  // the heads' output before proj: (B, N, D)
};

// Pre-norm transformer block: x + attn(norm1(x)), then + mlp(norm2(x)).
class Block : public Module {
 public:
  Block(const ViTConfig& config, Device device = Device::cpu());
  Var forward(const Var& x) const;

  LayerNorm& norm1() const { return *norm1_; }
  Attention& attn() const { return *attn_; }
  LayerNorm& norm2() const { return *norm2_; }
  Mlp& mlp() const { return *mlp_; }

 private:
  std::shared_ptr<LayerNorm> norm1_;
  std::shared_ptr<Attention> attn_;
  std::shared_ptr<LayerNorm> norm2_;
  std::shared_ptr<Mlp> mlp_;
};

// timm's PatchEmbed: one child `proj`, the stride-p convolution.
class PatchEmbed : public Module {
 public:
  PatchEmbed(const ViTConfig& config, Device device = Device::cpu());
  Var forward(const Var& x) const { return proj_->forward(x); }  // (B,C,H,W) -> (B, N, D)
  PatchConv& proj() const { return *proj_; }

 private:
  std::shared_ptr<PatchConv> proj_;
};

// A container for the blocks, so that they are named blocks.0, blocks.1, ...
class BlockList : public Module {
 public:
  BlockList(const ViTConfig& config, Device device = Device::cpu());
  Block& operator[](int64_t i) const { return *blocks_.at(static_cast<size_t>(i)); }
  int64_t size() const { return static_cast<int64_t>(blocks_.size()); }

 private:
  std::vector<std::shared_ptr<Block>> blocks_;
};

struct ViTOutput {
  Var features;  // (B, D): the final-normed class token
  Var logits;    // (B, num_classes); undefined without a head
};

class ViT : public Module {
 public:
  // Parameters are created on `device` with placeholder values (linear weights zero, LayerNorm
  // ones and zeros), ready for load_state_dict or load_pretrained; call init_weights to train
  // from scratch.
  explicit ViT(const ViTConfig& config, Device device = Device::cpu());

  // timm's default initialisation: linear weights normal(0, 0.02) (timm truncates at +-2, which
  // at this std never happens) and zero biases, pos_embed normal(0, 0.02), cls_token
  // normal(0, 1e-6), the patch convolution with PyTorch's Conv2d default, LayerNorms ones/zeros.
  void init_weights(Generator& gen);

  // images (B, C, image_size, image_size) float -> features and, with a head, logits. Both
  // are float32 whatever the precision (under bf16 the blocks run in bfloat16 and the final
  // class-token features are cast back, so heads and losses downstream stay float32).
  ViTOutput forward(const Var& images) const;
  ViTOutput forward(const Tensor& images) const { return forward(Var(images)); }

  // A timm safetensors checkpoint (e.g. vit_base_patch16_224.augreg2_in21k_ft_in1k's
  // model.safetensors) loaded strictly; a model without a head ignores the file's head.* tensors.
  void load_pretrained(const std::string& path);

  // The precision policy, applied once (e.g. right after loading the weights). bf16 converts
  // every parameter except the head (head.*) to bfloat16, rounding to nearest even: the frozen
  // backbone. Those parameters are then not trainable (their gradients would be bfloat16).
  // fp32 converts them back to float32 (exactly the bfloat16 values).
  void set_precision(Precision precision);
  Precision precision() const { return precision_; }

  const ViTConfig& config() const { return config_; }
  int64_t depth() const { return blocks_->size(); }
  Block& block(int64_t i) const { return (*blocks_)[i]; }
  PatchEmbed& patch_embed() const { return *patch_embed_; }
  LayerNorm& norm() const { return *norm_; }
  bool has_head() const { return head_ != nullptr; }
  Linear& head() const;
  const Var& cls_token() const { return cls_token_; }
  const Var& pos_embed() const { return pos_embed_; }

 private:
  ViTConfig config_;
  Precision precision_ = Precision::kFP32;
  std::shared_ptr<PatchEmbed> patch_embed_;
  Var cls_token_, pos_embed_;
  std::shared_ptr<BlockList> blocks_;
  std::shared_ptr<LayerNorm> norm_;
  std::shared_ptr<Linear> head_;
};

}  // namespace sdlora
