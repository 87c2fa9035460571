// Checkpoint -> model: a ViT in timm naming, optionally with SD-LoRA adapters in the project's
// naming (nn/sdlora.h), built with every size inferred from the tensors (only the number of heads
// is not recorded in a timm checkpoint, so the caller gives it).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "nn/safetensors.h"
#include "nn/sdlora.h"
#include "nn/vit.h"

namespace sdlora::apps {

// The ViT configuration a timm checkpoint implies:
//   width D, channels C, patch p   from patch_embed.proj.weight (D, C, p, p)
//   image size                     from pos_embed (1, 1 + (image / p)^2, D)
//   depth                          one more than the largest i in blocks.{i}.*
//   MLP ratio                      blocks.0.mlp.fc1.weight (hidden, D): hidden / D
//   qkv bias                       whether blocks.0.attn.qkv.bias exists
//   classes                        head.weight (classes, D); 0 (features only) without a head
// Throws naming `source` and the tensor when one is missing or inconsistent, and naming --heads
// when num_heads is not a positive divisor of the width.
ViTConfig infer_vit_config(const std::map<std::string, Tensor>& tensors, int64_t num_heads,
                           const std::string& source);

// A model read from a checkpoint. `adapters` is set when the file holds SD-LoRA adapter tensors;
// it is attached to `vit`, which must outlive it (members are destroyed bottom up).
struct LoadedModel {
  std::unique_ptr<ViT> vit;
  std::unique_ptr<SDLoRA> adapters;

  bool has_adapters() const { return adapters != nullptr; }
  // "none", or "paper mode, 2 frozen components + the current pair" and the like.
  std::string describe_adapters() const;
  // The model inference should run: the adapters merged into the qkv weights (a plain ViT that
  // costs what the backbone costs and computes the adapted function), or the backbone itself.
  // Leaves this LoadedModel empty.
  std::unique_ptr<ViT> take_inference_model();
};

// Reads `path` onto `device`: the backbone strictly (every missing, unexpected or mis-shaped
// tensor named), then the adapters through SDLoRA's own checkpoint loader. The adapters' mode
// comes from the file's sdlora_mode metadata; `mode_override` ("paper" / "official") supplies it
// for files that lack it.
LoadedModel load_model(const std::string& path, int64_t num_heads, Device device,
                       const std::string& mode_override = "");
LoadedModel load_model(const SafetensorsFile& file, int64_t num_heads, const std::string& source,
                       const std::string& mode_override = "");

// Whether the tensor map holds any SD-LoRA adapter tensor.
bool has_adapter_tensors(const std::map<std::string, Tensor>& tensors);

}  // namespace sdlora::apps
