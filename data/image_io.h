// Image decoding (JPEG and PNG through stb_image) with errors that name the file, including the
// truncated files that stb_image would otherwise decode silently with a grey bottom.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"

namespace sdlora::data {

// Decodes an encoded JPEG or PNG held in memory; `name` (the file) appears in every error.
// channels = 0 keeps the file's own count (1 grey, 3 colour; grey+alpha and RGBA lose alpha),
// 1 or 3 converts.
Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name, int channels = 0);
// Reads and decodes an image file.
Image load_image(const std::string& path, int channels = 0);
// Whether a file name has an image extension this project decodes (.jpg, .jpeg, .png, any case).
bool is_image_file_name(const std::string& name);

}  // namespace sdlora::data
