// safetensors files: an 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range, then the raw bytes. The format timm and Hugging Face publish
// weights in, and the one this project writes checkpoints in.
#pragma once

#include <map>
#include <string>

#include "tensor/tensor.h"

namespace sdlora {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;  // the header's "__metadata__" (string -> string)
};

// Reads every tensor onto `device`. F32, F16 and BF16 become float32; F64 float64; I64, I32
// and U8 keep their type. A bad header, a truncated file, out-of-range or overlapping offsets, an
// unknown dtype or a size that does not match the shape throw an error naming the file (and the
// tensor).
SafetensorsFile load_safetensors(const std::string& path, Device device = Device::cpu());

// Writes the tensors (any device; bfloat16 stays BF16) and metadata. The file is written to a
// temporary name beside the target and renamed into place, so a reader never sees half a file.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace sdlora
