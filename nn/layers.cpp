// Linear, LayerNorm, the patch convolution and the MLP, on the fused linear ops (bias, GELU and
// residual in the product's epilogue).
#include "nn/layers.h"

#include <cmath>

#include "autograd/functions.h"
#include "tensor/ops.h"

namespace sdlora {

namespace {
// Overwrites a parameter's value in place with uniform draws in [-bound, bound).
void fill_uniform(const Var& p, Generator& gen, double bound) {
  Tensor dst = p.data();
  dst.copy_(gen.uniform(p.shape(), -bound, bound, p.dtype(), p.device()));
}
}  // namespace

// ---- Linear

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Device device)
    : in_(in_features), out_(out_features) {
  SDLORA_CHECK(in_features > 0 && out_features > 0, "Linear: sizes must be positive, got in ",
               in_features, ", out ", out_features);
  weight_ = register_parameter("weight", Tensor::zeros({out_, in_}, DType::kFloat32, device));
  if (bias) bias_ = register_parameter("bias", Tensor::zeros({out_}, DType::kFloat32, device));
}

void Linear::reset_parameters(Generator& gen) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_));
  fill_uniform(weight_, gen, bound);
  if (bias_.defined()) fill_uniform(bias_, gen, bound);
}

Var Linear::forward(const Var& x) const { return linear(x, weight_, bias_); }

Var Linear::forward(const Var& x, const Var& residual) const {
  return linear(x, weight_, bias_, residual);
}

// ---- LayerNorm

LayerNorm::LayerNorm(int64_t dim, double eps, Device device) : eps_(eps) {
  SDLORA_CHECK(dim > 0, "LayerNorm: dim must be positive, got ", dim);
  weight_ = register_parameter("weight", Tensor::full({dim}, 1.0, DType::kFloat32, device));
  bias_ = register_parameter("bias", Tensor::zeros({dim}, DType::kFloat32, device));
}

Var LayerNorm::forward(const Var& x) const { return layernorm(x, weight_, bias_, eps_); }

// ---- PatchConv

PatchConv::PatchConv(int64_t in_channels, int64_t out_channels, int64_t patch, Device device)
    : in_(in_channels), out_(out_channels), patch_(patch) {
  SDLORA_CHECK(in_channels > 0 && out_channels > 0 && patch > 0,
               "PatchConv: sizes must be positive, got in ", in_channels, ", out ", out_channels,
               ", patch ", patch);
  weight_ = register_parameter("weight",
                               Tensor::zeros({out_, in_, patch_, patch_}, DType::kFloat32, device));
  bias_ = register_parameter("bias", Tensor::zeros({out_}, DType::kFloat32, device));
}

void PatchConv::reset_parameters(Generator& gen) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_ * patch_ * patch_));
  fill_uniform(weight_, gen, bound);
  fill_uniform(bias_, gen, bound);
}

Var PatchConv::forward(const Var& x) const {
  SDLORA_CHECK(
      x.ndim() == 4 && x.size(1) == in_ && x.size(2) % patch_ == 0 && x.size(3) % patch_ == 0,
      "PatchConv: input ", x.describe(), " should be (B, ", in_,
      ", H, W) with H and W multiples of ", patch_);
  return linear(patchify(x, patch_), reshape(weight_, {out_, in_ * patch_ * patch_}), bias_);
}

// ---- Mlp

Mlp::Mlp(int64_t dim, int64_t hidden, Device device)
    : fc1_(register_module("fc1", std::make_shared<Linear>(dim, hidden, true, device))),
      fc2_(register_module("fc2", std::make_shared<Linear>(hidden, dim, true, device))) {}

Var Mlp::forward(const Var& x) const {
  return fc2_->forward(linear_gelu(x, fc1_->weight(), fc1_->bias()));
}

Var Mlp::forward(const Var& x, const Var& residual) const {
  return fc2_->forward(linear_gelu(x, fc1_->weight(), fc1_->bias()), residual);
}

}  // namespace sdlora
