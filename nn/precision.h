// The precision policy of a model: fp32 (float32 everywhere) or bf16 mixed precision (frozen
// backbone weights and activations in bfloat16, float32 accumulation, trainable tensors,
// gradients and optimizer state in float32). README.md, section Precision, lists every tensor.
#pragma once

#include <string>

#include "tensor/dtype.h"

namespace sdlora {

enum class Precision { kFP32, kBF16 };

Precision parse_precision(const std::string& text);  // "fp32" | "bf16", else throws
const char* precision_name(Precision p);             // "fp32" | "bf16"
// The dtype of activations and frozen weights under p.
DType activation_dtype(Precision p);

}  // namespace sdlora
