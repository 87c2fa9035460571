// The tiny ViT the nn and apps tests use (and tests/nn/make_fixtures.py writes fixtures for):
// image 8, patch 4, 3 channels, width 16, depth 2, heads 2, MLP ratio 2.
#pragma once

#include <cstdint>

#include "nn/vit.h"

namespace sdlora::test {

inline ViTConfig tiny_vit_config(int64_t num_classes) {
  ViTConfig c;
  c.image_size = 8;
  c.patch_size = 4;
  c.in_channels = 3;
  c.embed_dim = 16;
  c.depth = 2;
  c.num_heads = 2;
  c.mlp_ratio = 2.0;
  c.num_classes = num_classes;
  return c;
}

}  // namespace sdlora::test
