// The basic layers, with PyTorch's parameter names and shapes: Linear, LayerNorm, the
// non-overlapping patch convolution of a ViT and the transformer MLP.
#pragma once

#include <cstdint>

#include "nn/module.h"
#include "tensor/random.h"

namespace sdlora {

// y = x W^T + b: x (..., in), weight (out, in), bias (out).
class Linear : public Module {
 public:
  // Weight and bias start at zero on `device`; reset_parameters() gives nn.Linear's init.
  Linear(int64_t in_features, int64_t out_features, bool bias = true,
         Device device = Device::cpu());
  // nn.Linear's default: weight and bias uniform in +-1/sqrt(in) (Kaiming-uniform, a = sqrt(5)).
  void reset_parameters(Generator& gen);
  Var forward(const Var& x) const;
  // (x W^T + residual) + b, the residual (..., out) added in the product's epilogue.
  Var forward(const Var& x, const Var& residual) const;

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  const Var& weight() const { return weight_; }
  const Var& bias() const { return bias_; }  // undefined without bias

 private:
  int64_t in_, out_;
  Var weight_, bias_;
};

// LayerNorm over the last dimension: weight (C) ones, bias (C) zeros.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, Device device = Device::cpu());
  Var forward(const Var& x) const;  // x (..., C) -> (..., C)

  double eps() const { return eps_; }
  const Var& weight() const { return weight_; }
  const Var& bias() const { return bias_; }

 private:
  double eps_;
  Var weight_, bias_;
};

// nn.Conv2d(in, out, kernel_size = p, stride = p): the ViT patch embedding. weight (out, in, p, p),
// bias (out). Computed as patchify (patches flattened in (c, i, j) order) then a linear layer with
// the weight viewed as (out, in p p), which is exactly the strided convolution.
class PatchConv : public Module {
 public:
  PatchConv(int64_t in_channels, int64_t out_channels, int64_t patch,
            Device device = Device::cpu());
  // Conv2d's default init: uniform in +-1/sqrt(in p p) for weight and bias.
  void reset_parameters(Generator& gen);
  // x (B, C, H, W) with H and W multiples of p -> (B, (H/p)(W/p), out), patches in row-major
  // grid order (timm's flatten(2).transpose(1, 2)).
  Var forward(const Var& x) const;

  const Var& weight() const { return weight_; }
  const Var& bias() const { return bias_; }

 private:
  int64_t in_, out_, patch_;
  Var weight_, bias_;
};

// The transformer MLP: fc1 (hidden, dim), exact GELU, fc2 (dim, hidden); fc1 and the GELU are
// one fused op (the pre-activation kept for backward).
class Mlp : public Module {
 public:
  Mlp(int64_t dim, int64_t hidden, Device device = Device::cpu());
  Var forward(const Var& x) const;  // (..., dim) -> (..., dim)
  // residual + mlp(x), the residual added in fc2's epilogue.
  Var forward(const Var& x, const Var& residual) const;

  Linear& fc1() const { return *fc1_; }
  Linear& fc2() const { return *fc2_; }

 private:
  std::shared_ptr<Linear> fc1_, fc2_;
};

}  // namespace sdlora
