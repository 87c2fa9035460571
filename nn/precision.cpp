// Names of the precision policies.
#include "nn/precision.h"

#include "tensor/error.h"

namespace sdlora {

Precision parse_precision(const std::string& text) {
  if (text == "fp32") return Precision::kFP32;
  if (text == "bf16") return Precision::kBF16;
  SDLORA_THROW("unknown precision '", text, "' (expected fp32 or bf16)");
}

const char* precision_name(Precision p) { return p == Precision::kBF16 ? "bf16" : "fp32"; }

DType activation_dtype(Precision p) {
  return p == Precision::kBF16 ? DType::kBFloat16 : DType::kFloat32;
}

}  // namespace sdlora
